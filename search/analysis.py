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
import sys
import threading
import weakref
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from whoosh.analysis import Analyzer, Filter, Token, Tokenizer

from search import lexicon
from search.normalize import normalize

# Bump when the code changes which terms a text produces: stored indexes are then rebuilt.
ANALYZER_VERSION = 1
# Bump when the keyword index's fields hold other values (search/keyword/fields.py): it is part
# of the fingerprint an index directory is named by, so every host rebuilds its index on start.
# 2: metric actuals and targets in base units (元, one item), targets indexed.
INDEX_FIELDS_VERSION = 2

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
    norm, offsets = normalize(text)
    return _segment(norm, offsets, outer_only=outer_only)


def _segment(norm: str, offsets: list[int] | None, *, outer_only: bool = False) -> list[Piece]:
    """Segment a normalized text (``normalize``'s result) like ``_pieces``."""
    lex = lexicon.current()
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
    """Return a hash of the analyzer and fields versions, dictionary, synonyms and stop words."""
    state = {
        "analyzer": ANALYZER_VERSION,
        "fields": INDEX_FIELDS_VERSION,
        **lexicon.current().state(),
    }
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
    return _render(text, _marks(text[:_SNIPPET_SCAN_CHARS], frozenset(query_terms)), max_len)


def marked_spans(text: str, query_terms: Iterable[str]) -> list[tuple[str, frozenset[str]]]:
    """Return the passages of ``text`` that ``highlight`` would mark, each with its terms.

    The same marks as ``highlight(text, query_terms, len(text) + 1)``, as the original text
    writes them ("abuse" for the term "abus"), without rendering HTML to parse it back.
    """
    marks = _marks(text[:_SNIPPET_SCAN_CHARS], frozenset(query_terms))
    return [(text[start:end], terms) for start, end, terms in marks]


def _highlight_reference(text: str, query_terms: Iterable[str], max_len: int = 160) -> str:
    """Return what ``highlight`` returns, always segmenting the text (the tests' reference)."""
    if max_len < 1:
        raise ValueError("max_len must be positive")
    marks = _marks(text[:_SNIPPET_SCAN_CHARS], frozenset(query_terms), prefilter=False)
    return _render(text, marks, max_len)


def _render(text: str, marks: list[Mark], max_len: int) -> str:
    """Cut ``text`` around its best marks and wrap them in <mark>, escaping everything."""
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


def _marks(text: str, wanted: frozenset[str], *, prefilter: bool = True) -> list[Mark]:
    """Locate the tokens of ``text`` whose term is wanted, merging overlapping ones.

    With ``prefilter``, a text none of whose tokens can produce a wanted term is not segmented
    (most fields tried for a snippet have no match): the result is the same, ``[]``; and a
    text segmented before is read from the span cache (``_TermSpans``) instead.
    """
    lex = lexicon.current()
    if prefilter:
        cache = _spans_cache(lex)
        spans = cache.get(text)
        if spans is None:
            norm, offsets = normalize(text)
            if not _candidates(lex, wanted).may_occur(norm):
                return []
            spans = cache.put(text, _term_spans(lex, norm, offsets))
        bounds, span_terms = spans
        hits = [
            (bounds[2 * i], bounds[2 * i + 1], term)
            for i, term in enumerate(span_terms)
            if term in wanted
        ]
    else:
        norm, offsets = normalize(text)
        hits = sorted(
            (start, end, term)
            for surface, start, end, _, _, stopped, literal in _segment(norm, offsets)
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


# (start, end) of every unstopped token, flattened, and its term: one text's segmentation.
Spans = tuple["array[int]", tuple[str, ...]]


def _term_spans(lex: lexicon.Lexicon, norm: str, offsets: list[int] | None) -> Spans:
    """Return every unstopped token of a normalized text, sorted as ``_marks`` sorts its hits."""
    found = sorted(
        (start, end, lex.term(surface, literal=literal))
        for surface, start, end, _, _, stopped, literal in _segment(norm, offsets)
        if not stopped
    )
    bounds = array("i", [bound for start, end, _ in found for bound in (start, end)])
    # Interned: the same few thousand terms recur across texts, one string object each.
    return bounds, tuple(sys.intern(term) for _, _, term in found)


# Tokens kept by the span cache (≈ 16 bytes each, plus the texts as keys: ≈ 4 MB in all).
SPAN_CACHE_TOKENS = 1 << 18


class _TermSpans:
    """Segmented texts by text, least recently used dropped beyond ``max_tokens`` tokens.

    A search result's title and fields are highlighted twice (the snippet with the query's
    terms, the reasons with the matched ones), and the campaigns of common queries recur:
    segmentation was half of a keyword search's CPU (bench/results/latency_kw_session9.txt).
    A text's spans depend on the text and the lexicon only: one cache per lexicon.
    """

    def __init__(self, lex: lexicon.Lexicon, max_tokens: int) -> None:
        self.lexicon = weakref.ref(lex)
        self.max_tokens = max_tokens
        self.tokens = 0
        self._entries: OrderedDict[str, Spans] = OrderedDict()
        self._lock = threading.Lock()  # a worker's request threads share it

    def get(self, text: str) -> Spans | None:
        with self._lock:
            spans = self._entries.get(text)
            if spans is not None:
                self._entries.move_to_end(text)
            return spans

    def put(self, text: str, spans: Spans) -> Spans:
        size = _span_cost(text, spans)
        if size > self.max_tokens:
            return spans
        with self._lock:
            if text in self._entries:
                return spans
            self._entries[text] = spans
            self.tokens += size
            while self.tokens > self.max_tokens:
                dropped_text, dropped = self._entries.popitem(last=False)
                self.tokens -= _span_cost(dropped_text, dropped)
        return spans


def _span_cost(text: str, spans: Spans) -> int:
    # A text costs its tokens, plus its characters (the key) at a quarter of a token each.
    return len(spans[1]) + len(text) // 4 + 8


_span_cache: _TermSpans | None = None


def _spans_cache(lex: lexicon.Lexicon) -> _TermSpans:
    """Return the span cache of ``lex``, a fresh one when the lexicon changed."""
    global _span_cache
    cache = _span_cache
    if cache is None or cache.lexicon() is not lex:
        cache = _span_cache = _TermSpans(lex, SPAN_CACHE_TOKENS)
    return cache


# The pre-filter. A token yields term t when lex.term(surface) == t, that is when
# stem_ascii(surface) is a "key" of t: t itself, or an entry of t's synonym group (synonyms map
# stemmed entries to their canonical). Every surface is a piece of the normalized text, squashed
# (whitespace dropped or collapsed) if it is a phrase match. Hence, without assumptions about
# which pieces rjieba or the phrase pattern cut:
# - a key that is not a Latin word ([a-z]+) is yielded only by a surface equal to it (Porter2
#   turns letters into letters only), so it occurs in the normalized text once whitespace is
#   removed from both;
# - a Latin key k is yielded by [a-z]+ surfaces w with stem(w) == k, pieces of a run of letters.
#   Each Porter2 step cuts a suffix, never the first letter, and appends a replacement; what is
#   appended and left at the end is at most _STEM_TAIL letters ("enci" -> "ence"). So w starts
#   with k[:max(1, len(k) - _STEM_TAIL)]: stemming the pieces of letter runs that start there
#   decides exactly (tests/search/test_analysis.py checks the premise on many words).
_STEM_TAIL = 4
_LATIN_WORD = re.compile(r"[a-z]+")  # the surfaces lexicon.stem_ascii stems
# Latin candidates stemmed per text before giving up and segmenting (long English texts).
_STEM_BUDGET = 64
_CANDIDATE_SETS = 256  # per lexicon: distinct sets of wanted terms kept


@dataclass(frozen=True)
class _Candidates:
    """What a normalized text must contain for one of its tokens to yield a wanted term."""

    squeezed: tuple[str, ...]  # keys that are not Latin words, whitespace removed
    latin: frozenset[str]  # keys that are Latin words
    prefixes: tuple[str, ...]  # a surface stemming to a Latin key starts with one of these

    def may_occur(self, norm: str) -> bool:
        """Return False only if no token of ``norm`` can yield a wanted term."""
        if self.squeezed:
            squeezed = "".join(norm.split())  # str.split and re's \s agree on whitespace
            if any(key in squeezed for key in self.squeezed):
                return True
        budget = _STEM_BUDGET
        for prefix in self.prefixes:
            start = norm.find(prefix)
            while start >= 0:
                run = _LATIN_WORD.match(norm, start)
                run_end = run.end() if run else start
                for end in range(start + len(prefix), run_end + 1):
                    if _stem(norm[start:end]) in self.latin:
                        return True
                    budget -= 1
                    if not budget:
                        return True  # not worth proving: segment the text
                start = norm.find(prefix, start + 1)
        return False


@lru_cache(maxsize=16_384)
def _stem(word: str) -> str:
    """Stem like ``lexicon.stem_ascii``, cached: Porter2 costs ≈ 14 µs and words recur."""
    return lexicon.stem_ascii(word)


# Lexicon id -> wanted terms -> candidates. Lexicons are unhashable dataclasses: keyed by id, the
# entry dropped when the lexicon is collected (its id may then be reused).
_candidate_cache: dict[int, dict[frozenset[str], _Candidates]] = {}


def _candidates(lex: lexicon.Lexicon, wanted: frozenset[str]) -> _Candidates:
    """Return the candidates for ``wanted`` under ``lex``, built on first use."""
    cache = _candidate_cache.get(id(lex))
    if cache is None:
        cache = _candidate_cache[id(lex)] = {}
        weakref.finalize(lex, _candidate_cache.pop, id(lex), None)
    found = cache.get(wanted)
    if found is None:
        if len(cache) >= _CANDIDATE_SETS:
            cache.clear()
        found = cache[wanted] = _build_candidates(lex.synonyms, wanted)
    return found


def _build_candidates(synonyms: dict[str, str], wanted: frozenset[str]) -> _Candidates:
    """Collect the keys of the wanted terms and split them by how a text is checked for them."""
    keys = set(wanted)
    keys.update(key for key, canonical in synonyms.items() if canonical in wanted)
    latin = frozenset(key for key in keys if _LATIN_WORD.fullmatch(key))
    prefixes: list[str] = []
    # Sorted, a prefix follows the shorter prefix it starts with; that one already finds it.
    for prefix in sorted({key[: max(1, len(key) - _STEM_TAIL)] for key in latin}):
        if not (prefixes and prefix.startswith(prefixes[-1])):
            prefixes.append(prefix)
    return _Candidates(
        squeezed=tuple(sorted({"".join(key.split()) for key in keys - latin})),
        latin=latin,
        prefixes=tuple(prefixes),
    )


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
