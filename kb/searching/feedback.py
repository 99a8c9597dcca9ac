"""Pseudo-relevance feedback for hybrid search: the keyword branch also searches the words of
the meaning top (search/feedback.py), weighted low. Off unless search.feedback.ENABLED."""

from __future__ import annotations

import sqlalchemy as sa

from kb.extensions import db
from kb.models import Campaign
from kb.searching.indexer import SearchIndexes
from search import feedback
from search.analysis import analyze
from search.keyword import SearchFilters
from search.keyword.fields import TEXT_FIELDS


def expand_keyword(
    indexes: SearchIndexes,
    own_terms: list[str],
    keyword: list[tuple[int, float]],
    semantic: list[tuple[int, float]],
    filters: SearchFilters,
    *,
    limit: int,
) -> tuple[list[tuple[int, float]], list[str]]:
    """Return the keyword ranking with the feedback clause's scores added, and the terms added.

    Unchanged (and no terms) when feedback is off, the meaning top is empty or no term of it
    discriminates.
    """
    if not feedback.ENABLED or not semantic:
        return keyword, []
    top = [cid for cid, _ in semantic[: feedback.FEEDBACK_DOCS]]
    rows = db.session.execute(
        sa.select(
            Campaign.title, Campaign.goal, Campaign.problems, Campaign.lessons, Campaign.summary
        ).where(Campaign.id.in_(top))
    ).all()
    # Whole words, as a query is analyzed (index mode adds inner pieces: 单用 of 单用户).
    documents = [analyze("\n".join(row)[: feedback.DOC_CHARS], mode="query") for row in rows]
    index = indexes.keyword
    with index._lock:  # the snapshot's searcher: document frequencies without a query
        snap = index._current()
        if snap is None:
            return keyword, []
        searcher = snap.searcher
        size = int(searcher.doc_count())

        def document_frequency(term: str) -> int:
            # A lower bound of the campaigns holding the term: its most common field's count.
            return max(int(searcher.doc_frequency(name, term)) for name in TEXT_FIELDS)

        chosen = feedback.feedback_terms(
            documents,
            document_frequency,
            size,
            exclude=own_terms,
            limit=feedback.FEEDBACK_TERMS,
            min_docs=feedback.MIN_DOCS,
            max_doc_share=feedback.MAX_DOC_SHARE,
        )
    if not chosen:
        return keyword, []
    added = [term for term, _ in chosen]
    found = index.search(" ".join(added), filters=filters, limit=limit)
    extra = [(hit.campaign_id, hit.score) for hit in found.hits]
    merged = feedback.add_feedback(
        keyword, extra, weight=feedback.FEEDBACK_WEIGHT, admit_new=feedback.ADMIT_NEW
    )
    return merged, added
