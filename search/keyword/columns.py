"""Stage 4, columns: per-segment arrays (ids, numbers, facets) read once per index version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.util.numeric import byte_to_length

from search.keyword.fields import FACET_FIELDS, TEXT_FIELDS, date_number, metric_field
from search.keyword.filters import SearchFilters
from search.postings import PostingsCache, numeric_values, term_docs


@dataclass(frozen=True, slots=True)
class _Ids:
    """Campaign ids and versions of one index version's live documents, by document number."""

    by_doc: list[int]  # -1 for a deleted document
    by_id: dict[int, int]
    versions: dict[int, int]
    doc_ids: npt.NDArray[np.int64]  # by_doc as an array
    live: npt.NDArray[np.bool_]  # by document number: not deleted
    start_dates: npt.NDArray[np.int64]  # yyyymmdd, by document number


# Bytes of term postings a KeywordIndex keeps (16 bytes a posting): the terms of a few hundred
# recent queries at 10k campaigns; reading a term's postings again costs ~0.1-1 ms.
POSTINGS_CACHE_BYTES = 16 << 20


class SegmentArrays:
    """Arrays read from each segment (field lengths, numbers, postings), kept while it lives.

    A segment's documents never change (deletions aside), so a commit, which adds a small
    segment, costs only that segment's reads. Used under the KeywordIndex lock.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, str], npt.NDArray[Any]] = {}
        self.postings = PostingsCache(POSTINGS_CACHE_BYTES)

    def get(
        self,
        reader: Any,
        name: str,
        read: Callable[[Any], npt.NDArray[Any]],
        empty: npt.NDArray[Any],
    ) -> npt.NDArray[Any]:
        """Return ``read(segment)`` of every segment laid end to end on the last axis."""
        parts = []
        for leaf, _ in leaves(reader):
            key = (leaf.segment().segment_id(), name)
            if key not in self._arrays:
                self._arrays[key] = read(leaf)
            parts.append(self._arrays[key])
        if not parts:
            return empty
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)

    def keep_only(self, reader: Any) -> None:
        """Forget the arrays of segments ``reader`` no longer has (merged or removed)."""
        live = {leaf.segment().segment_id() for leaf, _ in leaves(reader)}
        for key in [key for key in self._arrays if key[0] not in live]:
            del self._arrays[key]
        self.postings.keep_only(live)


# A facet field's values, and its (document number, value index) pairs as two arrays.
_FacetPostings = tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.intp]]
# Filters whose document masks a snapshot keeps (a hybrid search asks twice for the same one).
_MASK_CACHE = 16


class Snapshot:
    """One opened version of the index and lookup tables derived from it (built lazily)."""

    def __init__(self, searcher: Any, segments: SegmentArrays) -> None:
        self.searcher = searcher
        self._segments = segments
        self.postings = segments.postings
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
            # Once per segment, each field's column in one read: asked per document (≈ 2 us
            # per document and field) this was ≈ 2.5 s of a fresh worker's first search at
            # 30,000 campaigns (bench/results/startup_mem_session9.txt).
            docs = leaf.doc_count_all()
            rows = np.zeros((len(TEXT_FIELDS), docs), dtype=np.float64)
            perdoc = getattr(leaf, "_perdoc", None)  # a segment's reader; the codec's lengths
            for row, name in enumerate(TEXT_FIELDS):
                if perdoc is not None:
                    rows[row] = segment_field_lengths(perdoc, name, docs)
                else:
                    rows[row] = [leaf.doc_field_length(d, name) or 0 for d in range(docs)]
            return rows

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

    def by_number(
        self, mask: npt.NDArray[np.bool_] | None, field_name: str, descending: bool, count: int
    ) -> list[int]:
        """Return up to ``count`` document numbers in ``mask`` by a NUMERIC field's value.

        Highest first if ``descending``; ties and documents without the value (last) follow
        ``latest``'s order: latest start, then highest id.
        """
        ids = self.ids()
        docs = np.flatnonzero(ids.live if mask is None else mask)
        values = self.numbers(field_name)[docs]
        missing = np.isnan(values)
        key = np.where(missing, 0.0, -values if descending else values)
        order = np.lexsort((-ids.doc_ids[docs], -ids.start_dates[docs], key, missing))[:count]
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


class OpenSearcher:
    """The searcher a KeywordIndex has open, if any."""

    def __init__(self) -> None:
        self.searcher: Any = None

    def close(self) -> None:
        """Close the searcher (and its files); safe to call again."""
        searcher, self.searcher = self.searcher, None
        if searcher is not None:
            searcher.close()


def leaves(reader: Any) -> list[tuple[Any, int]]:
    """Return the segment readers with their first document numbers (none for an empty index)."""
    return list(reader.leaf_readers()) if reader.doc_count_all() else []


# A length byte's value, as the codec's byte_to_length reads it (0 stays 0: no length).
_LENGTH_OF_BYTE = np.array([0] + [byte_to_length(b) for b in range(1, 256)], dtype=np.int64)


def segment_field_lengths(lengths: Any, fieldname: str, doc_count: int) -> npt.NDArray[np.int64]:
    """Return each document's length of a field as ``doc_field_length`` reads it (0: none).

    ``lengths``: a segment's per-document reader (Whoosh's W3PerDocReader). Its lengths column
    holds one byte per document: read in one call rather than ``doc_count`` calls per field.
    """
    reader = lengths._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if reader is None:
        return np.zeros(doc_count, dtype=np.int64)
    if getattr(reader, "_fixedlen", None) != 1 or reader._count > doc_count:
        dfl = lengths.doc_field_length  # not the one-byte column expected: ask per document
        return np.array([dfl(d, fieldname) or 0 for d in range(doc_count)], dtype=np.int64)
    raw = reader._dbfile.get(reader._basepos, reader._count) if reader._count else b""
    found = np.zeros(doc_count, dtype=np.int64)
    found[: len(raw)] = _LENGTH_OF_BYTE[np.frombuffer(raw, dtype=np.uint8)]
    return found
