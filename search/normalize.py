"""Text normalization for keyword search: width, script and case folding with an offset map."""

from __future__ import annotations

import sys
import unicodedata
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import opencc

# Bump when the folding rules below change: stored indexes must then be rebuilt.
NORMALIZE_VERSION = 1


@cache
def _fold_table() -> dict[int, str]:
    """Build the per-character fold table: NFKC, then lower case."""
    # Per character, not per string: keeps an offset map and costs one C-level str.translate
    # per text (faster here than whole-string NFKC). Combining sequences stay uncomposed and
    # no character folds to nothing, so a text whose length is unchanged folded 1:1.
    table: dict[int, str] = {}
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            # A lone surrogate (valid in JSON) cannot be UTF-8 encoded for OpenCC.
            table[cp] = "\ufffd"
            continue
        ch = chr(cp)
        folded = unicodedata.normalize("NFKC", ch).lower()
        if folded != ch:
            table[cp] = folded
    return table


@cache
def _t2s() -> opencc.OpenCC:
    """Return the shared Traditional-to-Simplified converter (local data files, no network)."""
    import opencc  # loads a C++ library: only when first needed

    return opencc.OpenCC("t2s")


def normalize(text: str) -> tuple[str, list[int] | None]:
    """Fold width (NFKC), Traditional to Simplified and case; return the text and an offset map.

    The map gives, for each character of the result, the index of the character of ``text`` it
    came from; ``None`` means the identity (no character expanded), the common case.
    """
    table = _fold_table()
    folded = text.translate(table)
    offsets: list[int] | None = None
    if len(folded) != len(text):
        # Rare ("㎡" -> "m2", "⑩" -> "10"): rebuild the map character by character.
        offsets = []
        for i, ch in enumerate(text):
            offsets.extend([i] * len(table.get(ord(ch), ch)))
    converted = _convert_t2s(folded)
    return converted, offsets


def fold(text: str) -> str:
    """Fold width (NFKC), case and Traditional to Simplified: the one key texts are compared by.

    Metric names, units, audience labels, headers and search terms all fold through here, so
    "ＧＭＶ", "gmv", "成交額" and "成交额" compare the same everywhere.
    """
    return normalize(text)[0]


def _convert_t2s(text: str) -> str:
    """Convert Traditional to Simplified keeping one character per character."""
    converter = _t2s()
    converted: str = converter.convert(text)
    if len(converted) == len(text):
        # Every OpenCC 1.x t2s table entry maps n characters to n characters (checked on
        # TSPhrases, TSCharacters, TSCharactersExt), so this is the only path in practice.
        return converted
    # Defensive fallback should a future table break that: convert per character, keeping the
    # characters whose conversion would change the length.
    out = []
    for ch in text:
        one: str = converter.convert(ch)
        out.append(one if len(one) == 1 else ch)
    return "".join(out)
