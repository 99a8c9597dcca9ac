"""The keyword index: a versioned Whoosh index of campaigns, weighted fields and filters.

Laid out by pipeline stage, as Whoosh lays out its own modules: ``fields`` (schema and
documents), ``filters``, ``scoring``, ``columns`` (per-segment arrays) and ``storage`` (the
index on disk).

Layout on disk: ``directory/<fingerprint[:16]>-<n>/`` holds one complete Whoosh index and the
small file ``directory/CURRENT`` names the live one. ``rebuild`` writes a fresh sibling, then
switches CURRENT atomically, so readers never see a half-built index. An index built with
another analyzer (its fingerprint differs), a missing or unreadable one never makes the
constructor raise: ``is_stale`` / ``is_usable`` tell the app to rebuild, and until then searches
return nothing.

Queries are built from analyzed terms, never parsed (no field or wildcard syntax for users) and
scored by ``rank``: per term, the best of the weighted text fields plus a small share of the
others (BM25 per field), summed over the terms, times a small bonus for matching more of them.
Whoosh supplies the analysis, postings, statistics and filters; ranking, paging and facets are
computed here over every match (see ``rank`` for why).
"""

from search.keyword.fields import FACET_FIELDS, TEXT_FIELDS, MetricField
from search.keyword.filters import MetricRange, SearchFilters
from search.keyword.scoring import (
    COORD_BONUS,
    FIELD_TIEBREAK,
    KeywordHit,
    KeywordResult,
    Ranking,
    query_terms,
    rank,
    snippet,
)
from search.keyword.storage import (
    IndexBusyError,
    IndexUnavailableError,
    KeywordIndex,
)

__all__ = [
    "COORD_BONUS",
    "FACET_FIELDS",
    "FIELD_TIEBREAK",
    "TEXT_FIELDS",
    "IndexBusyError",
    "IndexUnavailableError",
    "KeywordHit",
    "KeywordIndex",
    "KeywordResult",
    "MetricField",
    "MetricRange",
    "Ranking",
    "SearchFilters",
    "query_terms",
    "rank",
    "snippet",
]
