"""Pseudo-relevance feedback for the keyword branch: words learned from the meaning top.

A question phrased in words no retro uses ("活动没人来怎么办") finds little by keyword, while the
embedding models often place the right retros first. Those retros' own words ("到场率", "引流")
are what the keyword index knows: the terms that are frequent in the top few meaning results and
rare in the collection (tf-idf against the index's own document frequencies, RM3-style; no hand
list) are searched as an extra, low-weight OR clause, and its BM25 scores are added to the
keyword branch's. Everything is bounded: FEEDBACK_DOCS documents of at most DOC_CHARS
characters, FEEDBACK_TERMS terms.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Sequence

from search.relevance import is_content_term

# Off unless measured to help (see bench/results/dev_figures_session5.txt).
ENABLED = False
# The meaning top read for feedback: few, so that one off-topic result cannot steer it.
FEEDBACK_DOCS = 3
# A term must occur in at least this many of them: agreement, not one retro's idiosyncrasy.
MIN_DOCS = 2
# Terms added to the keyword query (each costs one posting-list scan).
FEEDBACK_TERMS = 5
# Terms in more than this share of the collection do not discriminate.
MAX_DOC_SHARE = 0.2
# Characters of each feedback document analyzed (bounds the segmentation time).
DOC_CHARS = 1500
# The added clause's BM25 scores count this much against the user's own words'.
FEEDBACK_WEIGHT = 0.3
# False: the feedback only re-ranks what the user's own words found (no campaign joins).
ADMIT_NEW = True

Ranking = Sequence[tuple[int, float]]


def feedback_terms(
    documents: Sequence[Sequence[str]],
    document_frequency: Callable[[str], int],
    collection_size: int,
    *,
    exclude: Collection[str] = (),
    limit: int = FEEDBACK_TERMS,
    min_docs: int = MIN_DOCS,
    max_doc_share: float = MAX_DOC_SHARE,
) -> list[tuple[str, float]]:
    """Return the most discriminative terms of the feedback documents, best first, with weights.

    ``documents``: each feedback document's analyzed terms. A term's weight is the sum over
    documents of its relative frequency there, times its idf in the collection
    (log(N / df)); a term in fewer than ``min_docs`` documents, in more than ``max_doc_share``
    of the collection, in ``exclude`` (the query's own terms) or not a content term is left out.
    Ties go to the term first seen.
    """
    if collection_size <= 0 or limit <= 0:
        return []
    excluded = set(exclude)
    relative: dict[str, float] = {}
    present: Counter[str] = Counter()
    order: dict[str, int] = {}
    for terms in documents:
        counts = Counter(t for t in terms if t not in excluded and is_content_term(t))
        length = sum(counts.values())
        for term, count in counts.items():
            relative[term] = relative.get(term, 0.0) + count / length
            present[term] += 1
            order.setdefault(term, len(order))
    scored = []
    for term, share in relative.items():
        if present[term] < min_docs:
            continue
        df = document_frequency(term)
        if df <= 0 or df > max_doc_share * collection_size:
            continue
        scored.append((term, share * math.log(collection_size / df)))
    scored.sort(key=lambda item: (-item[1], order[item[0]]))
    return scored[:limit]


def add_feedback(
    keyword: Ranking,
    feedback: Ranking,
    *,
    weight: float = FEEDBACK_WEIGHT,
    admit_new: bool = ADMIT_NEW,
) -> list[tuple[int, float]]:
    """Return the keyword ranking with ``weight`` × each campaign's feedback score added.

    Both are BM25 scores of the same index, so they add like two clauses of one query; a
    campaign only the feedback terms found joins with its weighted score if ``admit_new``.
    Best first, ties to the lower id.
    """
    scores = dict(keyword)
    for campaign_id, score in feedback:
        if admit_new or campaign_id in scores:
            scores[campaign_id] = scores.get(campaign_id, 0.0) + weight * score
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
