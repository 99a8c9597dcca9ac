"""Stage 3, scoring: BM25 per field, the best field plus a tie-break, a coordination bonus."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from search import analysis
from search.keyword.fields import TEXT_FIELDS
from search.postings import PostingsCache, term_postings

# A pasted paragraph is not a better query than its first words, and costs per term.
MAX_QUERY_TERMS = 32
# Per term, a match in a second field adds this share of its score to the best field's.
FIELD_TIEBREAK = 0.2
# A document matching every query term scores up to this share more than one matching one term.
COORD_BONUS = 0.3
# Whoosh's BM25F defaults (one B for every field).
BM25_B = 0.75
BM25_K1 = 1.2


@dataclass(frozen=True, slots=True)
class KeywordHit:
    """A matching campaign, its BM25F score and the query terms it matched."""

    campaign_id: int
    score: float
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeywordResult:
    """One page of hits, the size of the whole result set, and facet counts if asked for."""

    hits: list[KeywordHit]
    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)


def snippet(text: str, query: str, max_len: int = 160) -> str:
    """Return an HTML snippet of ``text`` around the terms of ``query``, marked."""
    return analysis.highlight(text, analysis.analyze(query, mode="query"), max_len)


def query_terms(text: str) -> list[str]:
    """Return the distinct analyzed terms of a user query, in order, at most MAX_QUERY_TERMS."""
    return list(dict.fromkeys(analysis.analyze(text, mode="query")))[:MAX_QUERY_TERMS]


@dataclass(frozen=True, slots=True)
class Ranking:
    """Every document matching a query: document numbers, scores and matched-term bits."""

    docnums: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    masks: npt.NDArray[np.int64]  # bit i set: query term i matched

    def top(self, k: int) -> list[int]:
        """Return the indexes of the k best matches, best first (ties: lower docnum first)."""
        n = len(self.scores)
        if k <= 0 or n == 0:
            return []
        candidates = np.arange(n)
        if k < n:
            # Keep every score tied with the k-th: argpartition would cut through a tie at random.
            kth = np.partition(self.scores, n - k)[n - k]
            candidates = np.flatnonzero(self.scores >= kth)
        order = np.lexsort((self.docnums[candidates], -self.scores[candidates]))
        return [int(i) for i in candidates[order][:k]]


def rank(
    searcher: Any,
    terms: list[str],
    lengths: npt.NDArray[np.float64],
    allowed: npt.NDArray[np.bool_],
    cache: PostingsCache | None = None,
) -> Ranking:
    """Score every document matching any term, as documented in the module docstring.

    Per term, a document's best field counts fully and its other fields FIELD_TIEBREAK of their
    score (BM25 per field, Whoosh's formula, idf and quantized lengths; field boosts scale the
    term weight); the terms add up, then grow by up to COORD_BONUS with the share of the query's
    terms matched. ``lengths``: field lengths, TEXT_FIELDS x documents; ``allowed``: the
    documents that may match (live, and passing the filter); ``cache``: where to keep the
    terms' postings (search.postings.PostingsCache).
    """
    # Term at a time over Whoosh's posting lists rather than a Whoosh query: in whoosh-reloaded
    # 2.7.5 DisjunctionMax scores with sub-matchers that sit on other documents, ignores its
    # tie-break and drops live matches in replace(); the top-N shortcuts (replace, block
    # quality) then return a wrong top 20 for multi-field queries and a wrong len() with a
    # filter. Here every match is scored once, exactly, the arithmetic vectorized, and the
    # postings read a block at a time (search.postings).
    reader = searcher.reader()
    size = reader.doc_count_all()
    totals = np.zeros(size)
    masks = np.zeros(size, dtype=np.int64)
    matched_terms = np.zeros(size, dtype=np.int64)
    for i, term in enumerate(terms):
        btext = term.encode("utf-8")
        per_field = np.zeros((len(TEXT_FIELDS), size))
        for row, name in enumerate(TEXT_FIELDS):
            where, weight = term_postings(reader, name, btext, cache)
            if not len(where):
                continue
            norm = (
                1 - BM25_B + BM25_B * lengths[row, where] / (searcher.avg_field_length(name) or 1)
            )
            per_field[row, where] = (
                searcher.idf(name, btext) * weight * (BM25_K1 + 1) / (weight + BM25_K1 * norm)
            )
        best = per_field.max(axis=0)
        hit = best > 0  # Whoosh's idf is > 0 even for a term in every document
        totals += best + FIELD_TIEBREAK * (per_field.sum(axis=0) - best)
        masks[hit] |= 1 << i
        matched_terms += hit
    masks[~allowed] = 0
    docnums = np.flatnonzero(masks)
    scores = totals[docnums]
    if len(terms) > 1:
        scores *= 1 + COORD_BONUS * (matched_terms[docnums] - 1) / (len(terms) - 1)
    return Ranking(docnums, scores, masks[docnums])
