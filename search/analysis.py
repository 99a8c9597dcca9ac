"""Whoosh analyzer for mixed Simplified/Traditional Chinese and English campaign text.

Pipeline, identical at index and query time: normalize (full-width to half-width, Traditional to
Simplified, lower case; offsets kept) -> segment with rjieba in search mode plus the domain
dictionary -> drop punctuation and stop words -> stem Latin words (Porter2) -> map every token to
its synonym group's canonical term.

Search mode emits overlapping tokens (羊毛, 羊毛党). At index time all of them are kept; at query
time only the outermost ones, so that an AND of the query's terms does not demand sub-words that
a synonym of the outer word would never produce (a document saying 双11 has no 双十 / 十一).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from whoosh.analysis import Analyzer, Filter, Token, Tokenizer

from search import lexicon
from search.normalize import normalize

# Bump when the code changes which terms a text produces: stored indexes are then rebuilt.
ANALYZER_VERSION = 1

# Sentence ends a snippet may start after.
_SENTENCE_END = re.compile(r"[。！？!?;；\n]")
_WHITESPACE = re.compile(r"\s+")
# Only this much of a long document is scanned for a snippet (about 7 ms of analysis).
_SNIPPET_SCAN_CHARS = 20_000


# One token of the normalized text: (surface, start, end, pos, outer, stopped, literal).
# surface: the normalized text, before stemming and synonyms. [start, end): in the ORIGINAL text.
# pos: position of the outermost token it belongs to, stop words not counted. outer: not inside
# a longer token. literal: exempt from synonyms (see below). Plain tuples: this runs for every
# token of every document.
Piece = tuple[str, int, int, int, bool, bool, bool]


def _pieces(text: str, *, outer_only: bool = False) -> list[Piece]:
    """Segment ``text`` into normalized tokens with original offsets, punctuation dropped."""
    lex = lexicon.current()
    norm, offsets = normalize(text)
    spans = [(s, -e) for _, s, e in lex.segmenter.tokenize(norm, mode="search")]
    matched: set[tuple[int, int]] = set()
    if lex.phrase_pattern is not None:
        matched = {(m.start(), -m.end()) for m in lex.phrase_pattern.finditer(norm)}
        spans.extend(matched)
    # Sorted by (start, -end), an enclosing token precedes the tokens inside it.
    spans.sort()
    stopwords, phrases, words = lex.stopwords, lex.phrases, lex.words
    result: list[Piece] = []
    previous = (-1, 0)
    outer_end = -1
    pos = next_pos = 0
    for span in spans:
        if span == previous:
            continue  # a phrase match that rjieba also found
        previous = span
        start, end = span[0], -span[1]
        outer = end > outer_end
        if outer_only and not outer:
            continue
        surface = norm[start:end]
        if not surface.isalnum():  # fast path: most Chinese words are alphanumeric
            if surface.isspace() or not any(ch.isalnum() for ch in surface):
                continue  # punctuation, whitespace, symbols
            surface = lexicon.squash(surface)  # a phrase match may span spaces
        if outer:
            outer_end = end
        stopped = surface in stopwords
        if outer and not stopped:
            pos, next_pos = next_pos, next_pos + 1
        # rjieba keeps "11.11" whole in "11.11元" too, where the phrase guard said it is a price.
        literal = surface in phrases and span not in matched
        src_start, src_end = (
            (start, end) if offsets is None else (offsets[start], offsets[end - 1] + 1)
        )
        result.append((surface, src_start, src_end, pos, outer, stopped, literal))
        if outer and not outer_only and len(surface) > 4 and not surface.isascii():
            # Search mode adds only 2- and 3-character inner words: add our longer ones
            # (企业微信 inside 企业微信社群), or a synonym of them could never match.
            for inner, i, j in _long_inner_words(norm[start:end], words):
                inner_start, inner_end = start + i, start + j
                if offsets is not None:
                    inner_start, inner_end = offsets[inner_start], offsets[inner_end - 1] + 1
                result.append((inner, inner_start, inner_end, pos, False, False, False))
    return result


def _long_inner_words(surface: str, words: dict[str, int]) -> Iterator[tuple[str, int, int]]:
    """Yield the dictionary words of 4+ characters strictly inside ``surface``."""
    for length in range(4, len(surface)):
        for i in range(len(surface) - length + 1):
            if (inner := surface[i : i + length]) in words:
                yield inner, i, i + length


class KbTokenizer(Tokenizer):  # type: ignore[misc]  # whoosh ships no type hints
    """Tokenize mixed Chinese/English text into normalized words (see the module docstring)."""

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        """Yield one reused Token per word; ``mode="query"`` yields outermost words only."""
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if tokenize:
            items = _pieces(value, outer_only=mode == "query")
        else:
            items = [(lexicon.normalize_entry(value), 0, len(value), 0, True, False, False)]
        for surface, start, end, pos, _, stopped, literal in items:
            if stopped and removestops:
                continue
            token.text = surface
            token.stopped = stopped
            token.literal = literal
            token.boost = 1.0
            if keeporiginal:
                token.original = value[start:end]
            if positions:
                token.pos = start_pos + pos
            if chars:
                token.startchar = start_char + start
                token.endchar = start_char + end
            yield token


class KbTermFilter(Filter):  # type: ignore[misc]  # whoosh ships no type hints
    """Replace each token by its term: stem Latin words, then take the synonym canonical."""

    is_morph = True  # Whoosh skips morphological filters when asked for surface forms

    def __call__(self, tokens: Iterable[Token]) -> Iterator[Token]:
        """Rewrite token texts in place, as Whoosh filters do."""
        lex = lexicon.current()
        for token in tokens:
            token.text = lex.term(token.text, literal=getattr(token, "literal", False))
            yield token


def make_analyzer() -> Analyzer:
    """Return the analyzer for keyword fields; it pickles by reference (no state inside)."""
    return KbTokenizer() | KbTermFilter()


def analyze(text: str, *, mode: Literal["index", "query"] = "index") -> list[str]:
    """Return the terms ``text`` produces, in order, stop words removed."""
    lex = lexicon.current()
    return [
        lex.term(surface, literal=literal)
        for surface, _, _, _, _, stopped, literal in _pieces(text, outer_only=mode == "query")
        if not stopped
    ]


def analyzer_fingerprint() -> str:
    """Return a hash of the analyzer version, dictionary, synonyms and stop words."""
    state = {"analyzer": ANALYZER_VERSION, **lexicon.current().state()}
    return hashlib.sha256(
        json.dumps(state, ensure_ascii=False, sort_keys=True).encode()
    ).hexdigest()


def warm_up() -> None:
    """Load the tables and dictionaries now (≈ 0.5 s) instead of on the first request."""
    analyze("预热 warm-up")


def highlight(text: str, query_terms: Iterable[str], max_len: int = 160) -> str:
    """Return an HTML snippet of ``text`` around its best match, matches wrapped in <mark>.

    ``query_terms`` are analyzed terms: ``analyze(query, mode="query")``, or the texts of a Whoosh
    query's terms for this field. Matching runs on the normalized text, so a Traditional or
    full-width original is marked where it matches; overlapping matches merge into one mark.
    Everything taken from ``text`` is HTML-escaped: the result is safe to render unescaped.
    At most ``max_len`` characters of ``text`` are shown, with "…" where it was cut.
    """
    if max_len < 1:
        raise ValueError("max_len must be positive")
    marks = _marks(text[:_SNIPPET_SCAN_CHARS], set(query_terms))
    start, end = _window(text, marks, max_len)
    out = ["…"] if start > 0 else []
    cursor = start
    for mark_start, mark_end, _ in marks:
        mark_start, mark_end = max(mark_start, cursor), min(mark_end, end)
        if mark_start >= mark_end:
            continue
        out.append(_escape(text[cursor:mark_start]))
        out.append(f"<mark>{_escape(text[mark_start:mark_end])}</mark>")
        cursor = mark_end
    out.append(_escape(text[cursor:end]))
    if end < len(text):
        out.append("…")
    return "".join(out)


Mark = tuple[int, int, frozenset[str]]  # [start, end) in the original text, terms matched there


def _marks(text: str, wanted: set[str]) -> list[Mark]:
    """Locate the tokens of ``text`` whose term is wanted, merging overlapping ones."""
    lex = lexicon.current()
    hits = sorted(
        (start, end, term)
        for surface, start, end, _, _, stopped, literal in _pieces(text)
        if not stopped and (term := lex.term(surface, literal=literal)) in wanted
    )
    marks: list[Mark] = []
    for start, end, term in hits:
        if marks and start < marks[-1][1]:
            last_start, last_end, terms = marks[-1]
            marks[-1] = (last_start, max(last_end, end), terms | {term})
        else:
            marks.append((start, end, frozenset({term})))
    return marks


def _window(text: str, marks: list[Mark], max_len: int) -> tuple[int, int]:
    """Choose the [start, end) of at most max_len characters covering the most distinct terms."""
    if len(text) <= max_len:
        return 0, len(text)
    lead = max_len // 5  # context shown before the first match
    best = (-1, 0)
    best_start = 0
    for anchor, _, _ in marks:
        start = max(0, min(anchor - lead, len(text) - max_len))
        inside = [m for m in marks if m[0] >= start and m[1] <= start + max_len]
        score = (len(frozenset().union(*(m[2] for m in inside))), len(inside))
        if score > best:
            best, best_start = score, start
    first = next((m[0] for m in marks if m[0] >= best_start), best_start)
    # Prefer starting at a sentence start when one lies between the cut and the first match.
    ends = list(_SENTENCE_END.finditer(text, best_start, first))
    if best_start > 0 and ends:
        best_start = ends[-1].end()
    while best_start < first and text[best_start].isspace():
        best_start += 1
    return best_start, min(len(text), best_start + max_len)


def _escape(fragment: str) -> str:
    """HTML-escape a fragment of the original text, collapsing whitespace runs."""
    return html.escape(_WHITESPACE.sub(" ", fragment), quote=True)
