"""The keyword index: a versioned Whoosh index of campaigns, weighted fields and filters.

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

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import math
import os
import re
import shutil
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from whoosh import fields
from whoosh import query as wq
from whoosh.filedb.filestore import FileStorage

from search import analysis
from search.documents import CampaignText
from search.normalize import normalize
from search.postings import numeric_values, term_docs, term_postings

logger = logging.getLogger(__name__)

POINTER = "CURRENT"
_INDEX_DIR = re.compile(r"[0-9a-f]{16}-(\d+)")
_METRIC_KEY = re.compile(r"[a-z0-9_]+")
# Another writer (a second worker, the rebuild's old index) holds the lock for at most a commit
# with a merge: about a second at 100k documents. Whoosh's default, 0, fails at once.
WRITE_TIMEOUT_S = 15.0
# Pool memory before the rebuild's writer flushes a run to disk (Whoosh's default is 128).
REBUILD_LIMIT_MB = 256
PROGRESS_EVERY = 100
# A pasted paragraph is not a better query than its first words, and costs per term.
MAX_QUERY_TERMS = 32
# Per term, a match in a second field adds this share of its score to the best field's.
FIELD_TIEBREAK = 0.2
# A document matching every query term scores up to this share more than one matching one term.
COORD_BONUS = 0.3
# Whoosh's BM25F defaults (one B for every field).
BM25_B = 0.75
BM25_K1 = 1.2

# Text field -> field boost (scales the term weight before BM25's saturation).
TEXT_FIELDS: dict[str, float] = {
    "title": 3.0,
    "lessons": 2.0,
    "elements": 1.5,
    "goal": 1.5,
    "metrics": 1.0,
    "body": 1.0,
}
SINGLE_FACETS = ("industry", "goal_type", "status")
LIST_FACETS = ("audience", "channel", "reward_type")
FACET_FIELDS = SINGLE_FACETS + LIST_FACETS

MetricField = Literal["actual", "attain", "lift"]


class IndexUnavailableError(RuntimeError):
    """The keyword index cannot be written: it is missing or unreadable; rebuild it."""


class IndexBusyError(RuntimeError):
    """Another rebuild of the same index directory is running."""


def make_schema() -> fields.Schema:
    """Return the schema: weighted text, filter fields and per-metric numbers."""
    analyzer = analysis.make_analyzer()
    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True),
        # The id again, as a column: document number -> id without reading stored fields.
        id_num=fields.NUMERIC(int, bits=64, sortable=True),
        version=fields.NUMERIC(int, bits=64, stored=True, sortable=True),
        start_date=fields.NUMERIC(int, stored=True, sortable=True),  # yyyymmdd; column: order
        end_date=fields.NUMERIC(int, stored=True),
        key_attain=fields.NUMERIC(float, bits=64),
        missed=fields.BOOLEAN(),
    )
    for name, boost in TEXT_FIELDS.items():
        # No positions: queries are bags of terms, and overlapping tokens make phrases unreliable.
        schema.add(name, fields.TEXT(analyzer=analyzer, phrase=False, field_boost=boost))
    for name in ("industry", "goal_type", "status", "department", "business_line"):
        schema.add(name, fields.ID(stored=True))
    for name in (*LIST_FACETS, "tag"):
        schema.add(name, fields.KEYWORD(stored=True, commas=True, lowercase=True))
    schema.add("m_*", fields.NUMERIC(float, bits=64), glob=True)
    return schema


def filter_value(value: str) -> str:
    """Normalize a filter value as indexed: width, script and case folded, no commas."""
    # NFKC turns "，" into ",", which separates KEYWORD values.
    return normalize(value)[0].replace(",", " ").strip()


def date_number(day: date) -> int:
    """Return a date as the yyyymmdd integer the index stores."""
    return day.year * 10_000 + day.month * 100 + day.day


def metric_field(key: str, which: MetricField) -> str:
    """Return the index field of a metric's actual value, attainment % or lift %."""
    return "key_attain" if key == "key" else f"m_{key}_{which}"


def to_fields(doc: CampaignText) -> dict[str, Any]:
    """Flatten a campaign into the index's fields."""
    values: dict[str, Any] = {
        "id": str(doc.id),
        "id_num": doc.id,
        "version": doc.version,
        "start_date": date_number(doc.start_date),
        "end_date": date_number(doc.end_date),
        "title": doc.title,
        "lessons": "\n".join(s for s in (doc.lessons, doc.recommendations, doc.hypotheses) if s),
        "elements": doc.elements_text(),
        "goal": doc.goal,
        "metrics": doc.metrics_text(),
        "body": doc.body_text(),
        "industry": filter_value(doc.industry),
        "goal_type": filter_value(doc.goal_type),
        "status": filter_value(doc.status),
        "department": filter_value(doc.department),
        "missed": any(m.hit is False for m in doc.metrics),
    }
    if doc.business_line:
        values["business_line"] = filter_value(doc.business_line)
    for name, items in (
        ("audience", doc.audience),
        ("channel", doc.channels),
        ("reward_type", doc.reward_types),
        ("tag", doc.tags),
    ):
        if normalized := [v for v in map(filter_value, items) if v]:
            values[name] = ",".join(normalized)
    seen: set[str] = set()
    for metric in doc.metrics:
        if metric.key is None or metric.key in seen or not _METRIC_KEY.fullmatch(metric.key):
            continue  # the first of a campaign's metrics under one key is the one filtered on
        seen.add(metric.key)
        for which, number in (
            ("actual", metric.actual),
            ("attain", metric.attainment_pct),
            ("lift", metric.lift_pct),
        ):
            if number is not None and math.isfinite(number):
                values[f"m_{metric.key}_{which}"] = float(number)
    key_metric = next((m for m in doc.metrics if m.target is not None), None)
    if key_metric is not None and key_metric.attainment_pct is not None:
        values["key_attain"] = float(key_metric.attainment_pct)
    return values


@dataclass(frozen=True, slots=True)
class MetricRange:
    """A range of one metric value: ``low <= value < high``; a missing bound is open.

    ``key`` is a catalog key ("roi"), or "key" for the campaign's key metric (the first with a
    target), which is indexed for attainment only. ``field``: "actual" (the metric's own unit),
    "attain" (attainment %, 100 = target met) or "lift" (% over baseline). With both bounds
    None, it matches campaigns that have the value at all.
    """

    key: str
    field: MetricField
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        """Reject keys and bounds the index cannot hold."""
        if not _METRIC_KEY.fullmatch(self.key):
            raise ValueError(f"invalid metric key {self.key!r}")
        if self.field not in ("actual", "attain", "lift"):
            raise ValueError(f"invalid metric field {self.field!r}")
        if self.key == "key" and self.field != "attain":
            raise ValueError('the key metric is indexed for "attain" only')
        for bound in (self.low, self.high):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("metric bounds must be finite")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low must not exceed high")

    def to_query(self) -> wq.Query:
        """Return the Whoosh range query (low inclusive, high exclusive)."""
        name = metric_field(self.key, self.field)
        low = None if self.low is None else float(self.low)
        high = None if self.high is None else float(self.high)
        return wq.NumericRange(name, low, high, startexcl=False, endexcl=True)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What every result must satisfy; empty values mean "any"; list values must all match.

    Values are compared normalized (width, script and case folded): 寶媽 filters like 宝妈.
    ``date_from`` / ``date_to`` select campaigns that ran at any time in the range (inclusive).
    ``missed``: True for campaigns with a metric that missed its target, False for none.
    ``ids``: only these campaigns (an allow-list computed elsewhere, e.g. by warning signals);
    None means any, an empty set none.
    """

    industry: str | None = None
    goal_type: str | None = None
    status: str | None = None
    department: str | None = None
    business_line: str | None = None
    audience: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    reward_type: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    metrics: tuple[MetricRange, ...] = ()
    missed: bool | None = None
    ids: frozenset[int] | None = None

    @property
    def is_empty(self) -> bool:
        """Return whether nothing is filtered (every campaign passes)."""
        return (
            not self.terms()
            and self.date_from is None
            and self.date_to is None
            and not self.metrics
            and self.missed is None
            and self.ids is None
        )

    def terms(self) -> list[tuple[str, str]]:
        """Return the (field, normalized value) pairs every result must have, blanks skipped."""
        pairs: list[tuple[str, str]] = []
        for name in ("industry", "goal_type", "status", "department", "business_line"):
            value = getattr(self, name)
            if value and (normalized := filter_value(value)):
                pairs.append((name, normalized))
        for name in ("audience", "channel", "reward_type", "tag"):
            pairs.extend((name, n) for value in getattr(self, name) if (n := filter_value(value)))
        return pairs

    def to_query(self) -> wq.Query | None:
        """Return the equivalent Whoosh filter query, or None when nothing is filtered.

        The index filters with NumPy masks instead (``_Snapshot.filter_mask``); this query
        states the same conditions in Whoosh's terms and the tests hold the two together.
        """
        clauses: list[wq.Query] = [wq.Term(name, value) for name, value in self.terms()]
        if self.date_from is not None:
            clauses.append(wq.NumericRange("end_date", date_number(self.date_from), None))
        if self.date_to is not None:
            clauses.append(wq.NumericRange("start_date", None, date_number(self.date_to)))
        clauses.extend(metric.to_query() for metric in self.metrics)
        if self.missed is not None:
            clauses.append(wq.Term("missed", self.missed))
        if self.ids is not None:
            # An empty Or matches nothing, as an empty allow-list should.
            clauses.append(wq.Or([wq.Term("id", str(i)) for i in sorted(self.ids)]))
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else wq.And(clauses)


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
) -> Ranking:
    """Score every document matching any term, as documented in the module docstring.

    Per term, a document's best field counts fully and its other fields FIELD_TIEBREAK of their
    score (BM25 per field, Whoosh's formula, idf and quantized lengths; field boosts scale the
    term weight); the terms add up, then grow by up to COORD_BONUS with the share of the query's
    terms matched. ``lengths``: field lengths, TEXT_FIELDS x documents; ``allowed``: the
    documents that may match (live, and passing the filter).
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
            where, weight = term_postings(reader, name, btext)
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


@dataclass(frozen=True, slots=True)
class _Ids:
    """Campaign ids and versions of one index version's live documents, by document number."""

    by_doc: list[int]  # -1 for a deleted document
    by_id: dict[int, int]
    versions: dict[int, int]
    doc_ids: npt.NDArray[np.int64]  # by_doc as an array
    live: npt.NDArray[np.bool_]  # by document number: not deleted
    start_dates: npt.NDArray[np.int64]  # yyyymmdd, by document number


class _SegmentArrays:
    """Arrays read from each segment (field lengths, numbers), kept while the segment lives.

    A segment's documents never change (deletions aside), so a commit, which adds a small
    segment, costs only that segment's reads. Used under the KeywordIndex lock.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, str], npt.NDArray[Any]] = {}

    def get(
        self,
        reader: Any,
        name: str,
        read: Callable[[Any], npt.NDArray[Any]],
        empty: npt.NDArray[Any],
    ) -> npt.NDArray[Any]:
        """Return ``read(segment)`` of every segment laid end to end on the last axis."""
        parts = []
        for leaf, _ in _leaves(reader):
            key = (leaf.segment().segment_id(), name)
            if key not in self._arrays:
                self._arrays[key] = read(leaf)
            parts.append(self._arrays[key])
        if not parts:
            return empty
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)

    def keep_only(self, reader: Any) -> None:
        """Forget the arrays of segments ``reader`` no longer has (merged or removed)."""
        live = {leaf.segment().segment_id() for leaf, _ in _leaves(reader)}
        for key in [key for key in self._arrays if key[0] not in live]:
            del self._arrays[key]


# A facet field's values, and its (document number, value index) pairs as two arrays.
_FacetPostings = tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.intp]]
# Filters whose document masks a snapshot keeps (a hybrid search asks twice for the same one).
_MASK_CACHE = 16


class _Snapshot:
    """One opened version of the index and lookup tables derived from it (built lazily)."""

    def __init__(self, searcher: Any, segments: _SegmentArrays) -> None:
        self.searcher = searcher
        self._segments = segments
        self._ids: _Ids | None = None
        self._facets: dict[str, _FacetPostings] = {}
        self._masks: dict[SearchFilters, npt.NDArray[np.bool_] | None] = {}
        segments.keep_only(searcher.reader())

    @property
    def size(self) -> int:
        """Return the number of document numbers, deleted ones included."""
        return int(self.searcher.reader().doc_count_all())

    def field_lengths(self) -> npt.NDArray[np.float64]:
        """Return TEXT_FIELDS x documents field lengths."""

        def read(leaf: Any) -> npt.NDArray[np.float64]:
            # About 2 us per document and field: once per segment.
            docs = range(leaf.doc_count_all())
            return np.array(
                [[leaf.doc_field_length(d, name) or 0 for d in docs] for name in TEXT_FIELDS],
                dtype=np.float64,
            ).reshape(len(TEXT_FIELDS), len(docs))

        empty = np.zeros((len(TEXT_FIELDS), 0))
        return self._segments.get(self.searcher.reader(), "lengths", read, empty)

    def numbers(self, field_name: str) -> npt.NDArray[np.float64]:
        """Return a NUMERIC field's values by document number, NaN where a document has none."""
        return self._segments.get(
            self.searcher.reader(),
            f"number:{field_name}",
            lambda leaf: numeric_values(leaf, field_name),
            np.zeros(0),
        )

    def ids(self) -> _Ids:
        """Return the ids and versions, read from their columns on first use."""
        if self._ids is None:
            reader = self.searcher.reader()
            if not reader.doc_count_all():  # an empty index has no columns to read
                nothing = np.zeros(0, dtype=np.int64)
                self._ids = _Ids([], {}, {}, nothing, nothing.astype(np.bool_), nothing)
                return self._ids
            ids = list(reader.column_reader("id_num"))
            versions = list(reader.column_reader("version"))
            start_dates = np.fromiter(reader.column_reader("start_date"), np.int64)
            by_doc = [-1] * len(ids)
            by_id: dict[int, int] = {}
            version_by_id: dict[int, int] = {}
            for docnum in reader.all_doc_ids():  # skips deleted documents
                campaign_id = ids[docnum]
                by_doc[docnum] = campaign_id
                by_id[campaign_id] = docnum
                version_by_id[campaign_id] = versions[docnum]
            doc_ids = np.array(by_doc, dtype=np.int64)
            self._ids = _Ids(by_doc, by_id, version_by_id, doc_ids, doc_ids >= 0, start_dates)
        return self._ids

    def filter_mask(self, filters: SearchFilters) -> npt.NDArray[np.bool_] | None:
        """Return the live documents passing ``filters`` (as ``to_query``); None: no filter."""
        if filters not in self._masks:
            if len(self._masks) >= _MASK_CACHE:
                self._masks.pop(next(iter(self._masks)))
            self._masks[filters] = self._filter_mask(filters)
        return self._masks[filters]

    def _filter_mask(self, filters: SearchFilters) -> npt.NDArray[np.bool_] | None:
        # NumPy over term postings and numbers read once per segment: Whoosh's NumericRange
        # walks thousands of terms (≈ 40 ms for a date range at 10k documents).
        ids = self.ids()
        mask = ids.live.copy()
        filtered = False
        for name, value in filters.terms():
            mask &= self._term_mask(name, value)
            filtered = True
        if filters.date_from is not None:
            mask &= self.numbers("end_date") >= date_number(filters.date_from)
            filtered = True
        if filters.date_to is not None:
            mask &= ids.start_dates <= date_number(filters.date_to)
            filtered = True
        for metric in filters.metrics:
            values = self.numbers(metric_field(metric.key, metric.field))
            mask &= ~np.isnan(values)
            with np.errstate(invalid="ignore"):
                if metric.low is not None:
                    mask &= values >= metric.low
                if metric.high is not None:
                    mask &= values < metric.high
            filtered = True
        if filters.missed is not None:
            mask &= self._term_mask("missed", filters.missed)
            filtered = True
        if filters.ids is not None:
            chosen = np.zeros(len(mask), dtype=np.bool_)
            chosen[[ids.by_id[i] for i in filters.ids if i in ids.by_id]] = True
            mask &= chosen
            filtered = True
        return mask if filtered else None

    def _term_mask(self, name: str, value: object) -> npt.NDArray[np.bool_]:
        reader = self.searcher.reader()
        mask = np.zeros(self.size, dtype=np.bool_)
        mask[term_docs(reader, name, self.searcher.schema[name].to_bytes(value))] = True
        return mask

    def latest(self, mask: npt.NDArray[np.bool_] | None, count: int) -> list[int]:
        """Return up to ``count`` document numbers in ``mask``, latest start (then id) first."""
        ids = self.ids()
        docs = np.flatnonzero(ids.live if mask is None else mask)
        order = np.lexsort((-ids.doc_ids[docs], -ids.start_dates[docs]))[:count]
        return [int(d) for d in docs[order]]

    def facet_postings(self) -> dict[str, _FacetPostings]:
        """Return, per facet field, its values and every (document, value index) pair."""
        if not self._facets:
            reader = self.searcher.reader()
            live = self.ids().live
            for name in FACET_FIELDS:
                values: list[str] = []
                docs: list[npt.NDArray[np.int64]] = []
                for btext in reader.lexicon(name) if len(live) else ():
                    found = term_docs(reader, name, btext)
                    values.append(btext.decode("utf-8"))
                    docs.append(found[live[found]])
                which = [np.full(len(d), i, dtype=np.intp) for i, d in enumerate(docs)]
                self._facets[name] = (
                    values,
                    np.concatenate(docs) if docs else np.zeros(0, dtype=np.int64),
                    np.concatenate(which) if which else np.zeros(0, dtype=np.intp),
                )
        return self._facets

    def count_facets(self, docnums: npt.NDArray[np.int64]) -> dict[str, dict[str, int]]:
        """Count each facet field's values over the given documents, most frequent first."""
        chosen = np.zeros(self.size, dtype=np.bool_)
        chosen[docnums] = True
        counts: dict[str, dict[str, int]] = {}
        for name, (values, docs, which) in self.facet_postings().items():
            per_value = np.bincount(which[chosen[docs]], minlength=len(values))
            found = [(values[i], int(per_value[i])) for i in np.flatnonzero(per_value)]
            counts[name] = dict(sorted(found, key=lambda kv: (-kv[1], kv[0])))
        return counts


class _OpenSearcher:
    """The searcher a KeywordIndex has open, if any."""

    def __init__(self) -> None:
        self.searcher: Any = None

    def close(self) -> None:
        """Close the searcher (and its files); safe to call again."""
        searcher, self.searcher = self.searcher, None
        if searcher is not None:
            searcher.close()


class KeywordIndex:
    """A versioned Whoosh index of campaigns under ``directory``; safe to share across threads.

    Several processes may open the same directory (one object per worker): each call first
    checks CURRENT (one stat) and the index generation (one listing), so every object sees the
    others' commits and rebuilds at its next call. Calls on one object are serialized by a lock:
    the open searcher's files are not thread-safe, and pure-Python Whoosh gains nothing from
    threads. Writers wait up to WRITE_TIMEOUT_S for Whoosh's lock. Documents upserted into the
    old index while a rebuild runs are not in the new one: reconcile ``versions()`` afterwards.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.RLock()
        # Never equal to a real stat or to None (no pointer): the first _sync opens.
        self._pointer_stat: tuple[int, int, int] | None = (-1, -1, -1)
        self._name: str | None = None
        self._index: Any = None
        self._snapshot: _Snapshot | None = None
        # Without mmap the open searcher holds the segment files open: close them when this
        # object is collected unclosed too. A weakref callback runs before the files' own
        # finalizers (which would warn), and it keeps the holder, not this object, alive.
        self._open = _OpenSearcher()
        weakref.finalize(self, self._open.close)
        self._stale = True
        self._segments = _SegmentArrays()
        self.problem: str | None = None
        with self._lock:
            self._sync()

    # State

    @property
    def is_usable(self) -> bool:
        """Return whether an index is open (possibly stale)."""
        with self._lock:
            self._sync()
            return self._snapshot is not None

    @property
    def is_stale(self) -> bool:
        """Return whether the index must be rebuilt: missing, unreadable or another analyzer."""
        with self._lock:
            self._sync()
            return self._stale

    def close(self) -> None:
        """Release the open index files."""
        with self._lock:
            self._close()
            self._pointer_stat = (-1, -1, -1)

    def __enter__(self) -> KeywordIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close(self) -> None:
        self._open.close()
        self._snapshot = self._index = self._name = None

    def _sync(self) -> None:
        """Follow CURRENT if it changed (one stat), else refresh the searcher to the last commit."""
        try:
            st = (self.directory / POINTER).stat()
            pointer_stat: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            pointer_stat = None
        if pointer_stat != self._pointer_stat:
            self._pointer_stat = pointer_stat
            self._open_pointer()
            return
        if self._snapshot is None:
            return
        try:
            if self._snapshot.searcher.up_to_date():  # one directory listing
                return
            # Not Searcher.refresh(): it reuses the reader of a segment whose deletions changed,
            # so replaced and deleted documents come back (whoosh-reloaded 2.7.5).
            searcher = self._index.searcher()
        except Exception as error:  # an unreadable index must not stop the app
            self._fail(f"reopen failed: {error!r}")
            return
        # Nothing else holds the old searcher: every use runs under self._lock.
        self._open.close()
        self._snapshot = _Snapshot(searcher, self._segments)
        self._open.searcher = searcher

    def _open_pointer(self) -> None:
        """Open the index CURRENT names, recording why not when it cannot be opened."""
        self._close()
        self._stale = True
        try:
            name = (self.directory / POINTER).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            self.problem = f"no index pointer: {error}"
            return
        if not _INDEX_DIR.fullmatch(name):
            self.problem = f"corrupt index pointer {name[:40]!r}"
            return
        # Whoosh leaves a file open when a TOC fails to parse; its ResourceWarning is noise here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                index = _storage(self.directory / name).open_index()
                searcher = index.searcher()
            except Exception as error:  # corrupt indexes raise all kinds of errors
                self._fail(f"cannot open index {name}: {error!r}")
                del error
                gc.collect()  # collect the leaked file now, while the warning is ignored
                return
        self._name, self._index, self._snapshot = name, index, _Snapshot(searcher, self._segments)
        self._open.searcher = searcher
        self._stale = not name.startswith(analysis.analyzer_fingerprint()[:16])
        self.problem = "built with another analyzer" if self._stale else None

    def _fail(self, problem: str) -> None:
        logger.warning("keyword index under %s unusable: %s", self.directory, problem)
        with contextlib.suppress(Exception):
            self._close()
        self._stale = True
        self.problem = problem

    # Writing

    def rebuild(
        self,
        docs: Iterable[CampaignText],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Index ``docs`` into a fresh directory, switch CURRENT to it, remove the old ones.

        The old index serves searches until the switch. Raise IndexBusyError if another rebuild
        of this directory is running. ``progress`` gets the count of documents added so far,
        every PROGRESS_EVERY documents and at the end.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._rebuild_lock():
            fresh = self._make_dir()
            try:
                index = _storage(fresh).create_index(make_schema())
                writer = index.writer(procs=1, limitmb=REBUILD_LIMIT_MB, timeout=WRITE_TIMEOUT_S)
                try:
                    added = 0
                    for doc in docs:
                        writer.add_document(**to_fields(doc))
                        added += 1
                        if progress is not None and added % PROGRESS_EVERY == 0:
                            progress(added)
                    if progress is not None and added % PROGRESS_EVERY:
                        progress(added)
                except BaseException:
                    writer.cancel()
                    raise
                writer.commit()
                index.close()
                _fsync_files(fresh)  # Whoosh does not: CURRENT must never name unwritten data
                self._switch(fresh.name)
            except BaseException:
                shutil.rmtree(fresh, ignore_errors=True)
                raise
            with self._lock:
                self._sync()
            self._remove_old(keep=fresh.name)

    @contextlib.contextmanager
    def _rebuild_lock(self) -> Iterator[None]:
        with open(self.directory / ".rebuild.lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexBusyError(f"a rebuild of {self.directory} is running") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _make_dir(self) -> Path:
        """Create the next ``<fingerprint[:16]>-<n>`` directory (n above every existing one)."""
        numbers = [int(m.group(1)) for m in map(_INDEX_DIR.fullmatch, self._dir_names()) if m]
        n = max(numbers, default=0) + 1
        prefix = analysis.analyzer_fingerprint()[:16]
        while True:
            path = self.directory / f"{prefix}-{n}"
            try:
                path.mkdir()
            except FileExistsError:
                n += 1
                continue
            return path

    def _dir_names(self) -> list[str]:
        return [p.name for p in self.directory.iterdir() if p.is_dir()]

    def _switch(self, name: str) -> None:
        """Point CURRENT at ``name`` atomically (temp file, fsync, rename, fsync the directory)."""
        temp = self.directory / f".{POINTER}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.directory / POINTER)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _remove_old(self, keep: str) -> None:
        """Remove every other index directory; other processes switch at their next call."""
        for name in self._dir_names():
            if name != keep and _INDEX_DIR.fullmatch(name):
                shutil.rmtree(self.directory / name, ignore_errors=True)

    def upsert(self, docs: Iterable[CampaignText]) -> None:
        """Add or replace documents by id in one commit; skip any older than the indexed one.

        Raise IndexUnavailableError when there is no usable index (rebuild first).
        """
        # Whoosh cannot replace a document added in the same writer: keep one per id.
        newest: dict[int, CampaignText] = {}
        for doc in docs:
            if doc.id not in newest or doc.version >= newest[doc.id].version:
                newest[doc.id] = doc
        batch = list(newest.values())
        if not batch:
            return
        with self._writer() as writer, writer.searcher() as searcher:
            for doc in batch:
                stored = searcher.document(id=str(doc.id))
                if stored is not None and stored["version"] > doc.version:
                    continue  # a late, out-of-order change: the index already has a newer one
                writer.update_document(**to_fields(doc))

    def delete(self, ids: Iterable[int]) -> None:
        """Remove documents by campaign id in one commit (unknown ids are ignored)."""
        id_list = list(ids)
        if not id_list:
            return
        with self._writer() as writer:
            for campaign_id in id_list:
                writer.delete_by_term("id", str(campaign_id))

    @contextlib.contextmanager
    def _writer(self) -> Iterator[Any]:
        """Yield a writer on the live index; commit on success, cancel on error."""
        with self._lock:
            self._sync()
            index = self._index
        if index is None:
            raise IndexUnavailableError(self.problem or "no keyword index")
        # Outside self._lock: a commit can take a second and searches need not wait for it.
        writer = index.writer(timeout=WRITE_TIMEOUT_S)
        try:
            yield writer
        except BaseException:
            writer.cancel()
            raise
        try:
            writer.commit()
        except BaseException:
            # A commit that fails half-way keeps the write lock (every later write would wait
            # WRITE_TIMEOUT_S and fail) and its files open: cancel what is left of it. The change
            # log still holds the work.
            with contextlib.suppress(Exception):
                writer.cancel()
            if writer.writelock is not None:
                with contextlib.suppress(Exception):
                    writer.writelock.release()
            raise

    # Reading

    def _current(self) -> _Snapshot | None:
        self._sync()
        return self._snapshot

    def count(self) -> int:
        """Return the number of indexed campaigns (0 without a usable index)."""
        with self._lock:
            snap = self._current()
            return 0 if snap is None else int(snap.searcher.doc_count())

    def versions(self) -> dict[int, int]:
        """Return campaign id -> indexed version, to reconcile with the database."""
        with self._lock:
            snap = self._current()
            if snap is None:
                return {}
            return dict(snap.ids().versions)

    def search(
        self,
        query: str,
        *,
        filters: SearchFilters,
        limit: int,
        offset: int = 0,
        facets: bool = False,
    ) -> KeywordResult:
        """Return one page of matching campaigns, best first (ties: index order).

        An empty query lists every campaign matching the filters, latest start first (then
        highest id), score 0. A query that analyzes to no terms (only stop words or
        punctuation) matches nothing. ``total`` and ``facets`` cover the whole result set.
        Without a usable index the result is empty.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        terms = query_terms(query)
        with self._lock:
            snap = self._current()
            if snap is None or (query.strip() and not terms):
                return KeywordResult([], 0, _empty_facets() if facets else {})
            ids = snap.ids()
            allowed = snap.filter_mask(filters)
            hits: list[KeywordHit]
            if terms:
                ranking = rank(
                    snap.searcher,
                    terms,
                    snap.field_lengths(),
                    ids.live if allowed is None else allowed,
                )
                matched = ranking.docnums
                hits = [
                    KeywordHit(
                        ids.by_doc[int(ranking.docnums[i])],
                        float(ranking.scores[i]),
                        tuple(t for bit, t in enumerate(terms) if int(ranking.masks[i]) >> bit & 1),
                    )
                    for i in ranking.top(offset + limit)[offset:]
                ]
            else:
                matched = np.flatnonzero(ids.live if allowed is None else allowed)
                latest = snap.latest(allowed, offset + limit)
                hits = [KeywordHit(ids.by_doc[d], 0.0, ()) for d in latest[offset:]]
            counts = snap.count_facets(matched) if facets else {}
            return KeywordResult(hits, len(matched), counts)

    def matching_ids(self, filters: SearchFilters) -> set[int] | None:
        """Return the ids of every campaign matching ``filters``; None when nothing is filtered."""
        if filters.is_empty:
            return None
        with self._lock:
            snap = self._current()
            if snap is None:
                return set()
            mask = snap.filter_mask(filters)
            if mask is None:  # unreachable: is_empty said there is a filter
                return None
            return set(snap.ids().doc_ids[mask].tolist())

    @staticmethod
    def snippet(text: str, query: str, max_len: int = 160) -> str:
        """Return an HTML snippet of ``text`` around the terms of ``query`` (module ``snippet``)."""
        return snippet(text, query, max_len)

    def facet_counts(self, ids: Iterable[int]) -> dict[str, dict[str, int]]:
        """Return facet counts over the given campaigns (ids not in the index are ignored)."""
        with self._lock:
            snap = self._current()
            if snap is None:
                return _empty_facets()
            by_id = snap.ids().by_id
            docnums = np.fromiter((by_id[i] for i in ids if i in by_id), np.int64)
            return snap.count_facets(docnums)


def _storage(path: Path) -> FileStorage:
    """Return Whoosh's storage for one index directory, reading files without mmap.

    With mmap, Whoosh opens each file inside a segment as ``BytesIO(memoryview)``, which copies
    it: the whole index ends up in memory twice (mapped pages and the copies, ≈ 170 MB per
    worker at 10k campaigns). Plain reads fetch only the blocks a query touches.
    """
    return FileStorage(str(path), supports_mmap=False)


def _leaves(reader: Any) -> list[tuple[Any, int]]:
    """Return the segment readers with their first document numbers (none for an empty index)."""
    return list(reader.leaf_readers()) if reader.doc_count_all() else []


def _fsync_files(directory: Path) -> None:
    """Flush every file under ``directory`` to disk."""
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _empty_facets() -> dict[str, dict[str, int]]:
    return {name: {} for name in FACET_FIELDS}
