"""The keyword-search lexicon: domain dictionary, synonym groups and stop words."""

from __future__ import annotations

import importlib.metadata
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from whoosh.lang.porter2 import stem

from search.normalize import NORMALIZE_VERSION, normalize

if TYPE_CHECKING:
    import rjieba

DATA_DIR = Path(__file__).parent / "data"
USERDICT_PATH = DATA_DIR / "userdict.txt"
SYNONYMS_PATH = DATA_DIR / "synonyms.txt"
STOPWORDS_PATH = DATA_DIR / "stopwords.txt"

# Frequency given to a dictionary word without an explicit one: rjieba.suggest_freq alone
# (often 1) loses to ordinary words in context ("首单立减" -> 首 / 单立 / 减); much higher
# values swallow longer real words ("回流率" -> 回流 / 率). Chosen on domain phrases.
DEFAULT_WORD_FREQ = 2000

_TERM_CACHE_SIZE = 200_000

_HAN_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_ASCII_WORD = re.compile(r"[0-9a-z]+")
_ASCII_ALPHA = re.compile(r"[a-z]+")
_SPACES = re.compile(r"\s+")
# Whitespace next to a non-ASCII character carries no meaning in Chinese ("双 11" == "双11").
_SPACE_NEAR_CJK = re.compile(r"\s*([^\x00-\x7f])\s*")


@dataclass
class Lexicon:
    """Dictionary words, phrase patterns, synonyms and stop words, all normalized."""

    words: dict[str, int]
    phrases: frozenset[str]
    synonyms: dict[str, str]
    stopwords: frozenset[str]
    segmenter: rjieba.Jieba = field(repr=False)
    phrase_pattern: re.Pattern[str] | None = field(repr=False)
    _terms: dict[str, str] = field(default_factory=dict, repr=False)

    def term(self, surface: str, *, literal: bool = False) -> str:
        """Return the indexed term for a normalized surface token (stemmed, then canonical)."""
        if literal:
            return stem_ascii(surface)
        term = self._terms.get(surface)
        if term is None:
            key = stem_ascii(surface)
            term = self.synonyms.get(key, key)
            if len(self._terms) >= _TERM_CACHE_SIZE:
                self._terms.clear()  # numbers make the vocabulary open-ended
            self._terms[surface] = term
        return term

    def state(self) -> dict[str, object]:
        """Return everything, besides code, that decides which terms a text produces."""
        return {
            "normalize": NORMALIZE_VERSION,
            "unicode": unicodedata.unidata_version,
            "rjieba": importlib.metadata.version("rjieba"),
            "opencc": importlib.metadata.version("opencc"),
            "words": sorted(self.words.items()),
            "phrases": sorted(self.phrases),
            "synonyms": sorted(self.synonyms.items()),
            "stopwords": sorted(self.stopwords),
        }


def stem_ascii(surface: str) -> str:
    """Stem a purely Latin-alphabetic token (Porter2); return anything else unchanged."""
    # Porter2, not Whoosh's default Porter: that one gives "running" -> "runn", "buying" -> "bui".
    return stem(surface) if _ASCII_ALPHA.fullmatch(surface) else surface


def squash(surface: str) -> str:
    """Collapse whitespace to one space, and drop it next to Chinese characters."""
    return _SPACE_NEAR_CJK.sub(r"\1", _SPACES.sub(" ", surface)).strip()


def normalize_entry(entry: str) -> str:
    """Normalize a dictionary, synonym or stop-word entry like indexed text."""
    return squash(normalize(entry)[0])


def current() -> Lexicon:
    """Return the lexicon for the configured data files (loaded once per set of paths)."""
    # Read the module globals at call time so tests can point them at other files.
    return load(USERDICT_PATH, SYNONYMS_PATH, STOPWORDS_PATH)


@lru_cache(maxsize=2)  # each lexicon holds a 25 MB segmenter; tests load a second one
def load(userdict: Path, synonyms: Path, stopwords: Path) -> Lexicon:
    """Load and normalize the three data files; raise ValueError on a malformed line."""
    words: dict[str, int] = {}
    phrases: set[str] = set()
    for lineno, line in _entries(userdict):
        match line.split():
            case [entry]:
                _add_word(normalize_entry(entry), None, words, phrases)
            case [entry, freq] if freq.isdigit():
                _add_word(normalize_entry(entry), int(freq), words, phrases)
            case _:
                raise ValueError(f"{userdict}:{lineno}: expected 'word' or 'word freq'")
    canonical: dict[str, str] = {}
    for lineno, line in _entries(synonyms):
        group = [normalize_entry(entry) for entry in line.split("=")]
        if len(group) < 2 or not all(group):
            raise ValueError(f"{synonyms}:{lineno}: expected 'canonical = variant = ...'")
        target = stem_ascii(group[0])
        for entry in group:
            _add_word(entry, None, words, phrases)
            key = stem_ascii(entry)
            if canonical.get(key, target) != target:
                raise ValueError(f"{synonyms}:{lineno}: {entry!r} is already in another group")
            canonical[key] = target
    stop = frozenset(normalize_entry(line) for _, line in _entries(stopwords))
    # Imported here: importing rjieba builds its module-level segmenter (0.1 s, 34 MB). Ours is
    # a private one (+25 MB) because the module-level one is process-wide shared state.
    import rjieba

    segmenter = rjieba.Jieba()
    for word, min_freq in words.items():
        # suggest_freq includes the word's current frequency: common words are never weakened.
        segmenter.add_word(word, max(min_freq, segmenter.suggest_freq(word)), None)
    return Lexicon(
        words=words,
        phrases=frozenset(phrases),
        synonyms={k: v for k, v in canonical.items() if k != v},
        stopwords=stop,
        segmenter=segmenter,
        phrase_pattern=_compile_phrases(phrases),
    )


def _entries(path: Path) -> list[tuple[int, str]]:
    """Return the (line number, text) of the non-blank, non-comment lines of a data file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    stripped = ((n, line.strip()) for n, line in enumerate(lines, start=1))
    return [(n, line) for n, line in stripped if line and not line.startswith("#")]


def _add_word(word: str, freq: int | None, words: dict[str, int], phrases: set[str]) -> None:
    """File a normalized entry as a segmenter word, a phrase pattern, or neither."""
    if _HAN_WORD.fullmatch(word):
        words[word] = max(words.get(word, 0), freq or DEFAULT_WORD_FREQ)
    elif not _ASCII_WORD.fullmatch(word):
        # Mixed ("k值", "双11"), spaced or punctuated entries: adding them to rjieba would
        # split longer runs of digits or letters ("6180" -> 618 / 0), so match them instead.
        phrases.add(word)


def _compile_phrases(phrases: set[str]) -> re.Pattern[str] | None:
    """Compile the phrase entries into one pattern, longest first, guarded at ASCII edges."""
    if not phrases:
        return None
    alternatives = [_phrase_regex(p) for p in sorted(phrases, key=lambda p: (-len(p), p))]
    return re.compile("|".join(alternatives))


def _phrase_regex(phrase: str) -> str:
    """Translate one normalized phrase into a regex tolerant of spacing."""
    parts: list[str] = []
    for i, ch in enumerate(phrase):
        if ch == " ":
            parts.append(r"\s+")
            continue
        if i and phrase[i - 1] != " " and (phrase[i - 1].isascii() != ch.isascii()):
            parts.append(r"\s*")  # "双 11" in text matches the entry "双11"
        parts.append(re.escape(ch))
        if i == 0 and _ASCII_WORD.match(ch):
            # Not the tail of "2023.11.11" or "¥11.11". The guard follows the first character
            # so that every alternative starts with a literal: re then skips non-candidate
            # positions in C (20x faster than a leading lookbehind).
            parts.append(r"(?<![0-9a-z_.¥$][\s\S])")
    body = "".join(parts)
    if _ASCII_WORD.match(phrase[-1]):
        body += r"(?![0-9a-z_%]|\.[0-9]|\s*[元块])"  # not "双110", "11.11%", "11.11元"
    return body
