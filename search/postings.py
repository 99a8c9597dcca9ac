"""Read Whoosh postings and numeric fields into NumPy arrays, a block at a time.

Walking a matcher posting by posting costs six Python calls per posting (≈ 10 ms for a common
term at 10k documents); Whoosh's on-disk format stores each block of up to 128 postings as one
pickled tuple of delta-coded ids and weights, so a block decodes into arrays at once. The block
reader uses ``W3LeafMatcher`` internals (whoosh-reloaded 2.7.x); any other matcher (inlined
single postings, another codec) takes the posting-by-posting path, and a test checks that both
give the same arrays.

A posting list stored in the Whoosh 3 codec's posting file is read with one file read of its
whole extent and its blocks decoded from memory (``_extent_postings``): through the matcher,
each block costs a seek and a dozen small reads of the compound file as pickle pulls its bytes
(70 % of a keyword search's CPU at 10k campaigns, bench/results/keyword_latency_session7.txt).
The decoding is the matcher's own (same ids, same float32 weights widened to float64); a term
the reader cannot take that way (inlined, another codec, a damaged extent) goes through the
matcher as before.

Document numbers are global (segment offset added) and include deleted documents: callers mask
them with the live documents of their reader.
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3LeafMatcher, W3TermInfo, W3TermsReader
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import TermNotFound

Docnums = npt.NDArray[np.int64]
Weights = npt.NDArray[np.float64]

_EMPTY_IDS: Docnums = np.zeros(0, dtype=np.int64)
_EMPTY_WEIGHTS: Weights = np.zeros(0)


def term_postings(
    reader: Any, field: str, btext: bytes, cache: PostingsCache | None = None
) -> tuple[Docnums, Weights]:
    """Return the global document numbers and weights of a term, deleted documents included.

    With ``cache``, each segment's postings of the term (or their absence) are kept there.
    """
    ids: list[Docnums] = []
    weights: list[Weights] = []
    for leaf, offset in _leaves(reader):
        found = (
            _segment_postings(leaf, field, btext)
            if cache is None
            else cache.get(leaf, field, btext)
        )
        if found is None:
            continue
        ids.append(found[0] + offset)
        weights.append(found[1])
    if not ids:
        return _EMPTY_IDS, _EMPTY_WEIGHTS
    if len(ids) == 1:
        return ids[0], weights[0]
    return np.concatenate(ids), np.concatenate(weights)


class PostingsCache:
    """Terms' postings per segment, least recently used dropped beyond ``max_bytes``.

    A segment's postings never change once written (deletions are masked by the caller), so an
    entry stays right for the segment's life; keys carry the segment id. Absent terms are kept
    too (a lookup in the segment's term table costs about as much as a short posting list).
    Not thread-safe: KeywordIndex uses it under its lock.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[str, str, bytes], tuple[Docnums, Weights] | None] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self.bytes = 0

    def get(self, leaf: Any, field: str, btext: bytes) -> tuple[Docnums, Weights] | None:
        """Return the segment's postings of a term (None: not in the segment), read once."""
        key = (leaf.segment().segment_id(), field, btext)
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
        found = _segment_postings(leaf, field, btext)
        size = 0 if found is None else found[0].nbytes + found[1].nbytes
        if size > self.max_bytes:
            return found  # larger than the whole cache: not kept
        entries[key] = found
        self.bytes += size + _ENTRY_OVERHEAD
        while self.bytes > self.max_bytes:
            _, dropped = entries.popitem(last=False)
            self.bytes -= _ENTRY_OVERHEAD + (
                0 if dropped is None else dropped[0].nbytes + dropped[1].nbytes
            )
        return found

    def keep_only(self, segment_ids: set[str]) -> None:
        """Forget the entries of segments not in ``segment_ids`` (merged away or removed)."""
        for key in [key for key in self._entries if key[0] not in segment_ids]:
            dropped = self._entries.pop(key)
            self.bytes -= _ENTRY_OVERHEAD + (
                0 if dropped is None else dropped[0].nbytes + dropped[1].nbytes
            )


# Bytes counted per cache entry besides its arrays (key, tuple, two array headers), roughly.
_ENTRY_OVERHEAD = 400


def _segment_postings(leaf: Any, field: str, btext: bytes) -> tuple[Docnums, Weights] | None:
    """Return one segment's postings of a term, None when the segment does not have it."""
    # One lookup in the segment's term table (``term in leaf`` and then the postings were two).
    try:
        terminfo = leaf.term_info(field, btext)
    except TermNotFound:
        return None
    found = _extent_postings(leaf, terminfo)
    return matcher_postings(leaf, field, btext) if found is None else found


def term_docs(reader: Any, field: str, btext: bytes) -> Docnums:
    """Return the global document numbers of a term, deleted documents included."""
    return term_postings(reader, field, btext)[0]


def leaf_postings(leaf: Any, field: str, btext: bytes) -> tuple[Docnums, Weights]:
    """Return one segment's document numbers and weights of a term (present in the segment)."""
    found = _extent_postings(leaf, leaf.term_info(field, btext))
    return matcher_postings(leaf, field, btext) if found is None else found


def matcher_postings(leaf: Any, field: str, btext: bytes) -> tuple[Docnums, Weights]:
    """Return a term's postings in one segment read through Whoosh's matcher (the reference)."""
    matcher = leaf.postings(field, btext)
    if isinstance(matcher, FilterMatcher):  # the segment's deletions: the caller masks them
        matcher = matcher.child
    if type(matcher) is W3LeafMatcher and not matcher._byteids:  # see module doc
        return _blocks(matcher)
    return _one_by_one(matcher)


def _blocks(matcher: Any) -> tuple[Docnums, Weights]:
    """Decode every block of an on-disk posting list (Whoosh 3 codec internals)."""
    ids: list[Docnums] = []
    weights: list[Weights] = []
    while matcher.is_active():
        matcher._read_data()
        deltas, block_weights = matcher._data[0], matcher._data[1]
        count = matcher._blocklength
        ids.append(np.cumsum(np.asarray(deltas, dtype=np.int64)))
        if block_weights is None:  # every weight 1.0
            weights.append(np.ones(count))
        elif isinstance(block_weights, float):  # every weight the same
            weights.append(np.full(count, block_weights))
        else:
            weights.append(np.asarray(block_weights, dtype=np.float64))
        matcher._next_block()
    if not ids:
        return _EMPTY_IDS, _EMPTY_WEIGHTS
    return np.concatenate(ids), np.concatenate(weights)


_BLOCK_LENGTH = struct.Struct("!i")


def _extent_postings(leaf: Any, terminfo: Any) -> tuple[Docnums, Weights] | None:
    """Decode a term's on-disk posting list from one read of its extent; None: not possible."""
    terms: Any = getattr(leaf, "_terms", None)
    if type(terms) is not W3TermsReader or type(terminfo) is not W3TermInfo:
        return None
    if terminfo.is_inlined():
        return None
    offset, length = terminfo.extent()
    # whoosh-reloaded 2.7.5's W3TermInfo.from_bytes keeps the length as a 1-tuple.
    if isinstance(length, tuple):
        length = length[0]
    data = terms._postfile.get(offset, length)
    if len(data) != length or data[:4] != WHOOSH3_HEADER_MAGIC:
        return None
    ids: list[Docnums] = []
    weights: list[Weights] = []
    stream = io.BytesIO(data)
    position = 4
    while True:
        if position + 4 > length:
            return None  # no last block inside the extent: let the matcher read it
        (block_length,) = _BLOCK_LENGTH.unpack_from(data, position)
        last = block_length < 0
        end = position + 4 + abs(block_length)
        stream.seek(position + 4)
        # The index's own files, unpickled exactly as Whoosh's matcher unpickles them.
        count, _, _, compression, _, _ = pickle.load(stream)  # noqa: S301
        block = data[stream.tell() : end]
        if compression:
            block = zlib.decompress(block)
        deltas, block_weights = pickle.loads(block)[:2]  # noqa: S301
        ids.append(np.cumsum(np.asarray(deltas, dtype=np.int64)))
        if block_weights is None:  # every weight 1.0
            weights.append(np.ones(count))
        elif isinstance(block_weights, float):  # every weight the same
            weights.append(np.full(count, block_weights))
        else:
            weights.append(np.asarray(block_weights, dtype=np.float64))
        position = end
        if last:
            break
    if len(ids) == 1:
        return ids[0], weights[0]
    return np.concatenate(ids), np.concatenate(weights)


def _one_by_one(matcher: Any) -> tuple[Docnums, Weights]:
    docs: list[int] = []
    weights: list[float] = []
    while matcher.is_active():
        docs.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return np.array(docs, dtype=np.int64), np.array(weights, dtype=np.float64)


def numeric_values(leaf: Any, field: str) -> npt.NDArray[np.float64]:
    """Return one segment's values of a NUMERIC field by document number (NaN where none).

    Read from the full-precision terms' postings, so the field needs no column. A document
    with several values keeps the last term's (the field holds one value per document here).
    """
    values = np.full(leaf.doc_count_all(), np.nan)
    if field not in leaf.schema:
        return values
    field_type = leaf.schema[field]
    for btext in field_type.sortable_terms(leaf, field):
        values[leaf_postings(leaf, field, btext)[0]] = float(field_type.from_bytes(btext))
    return values


def _leaves(reader: Any) -> list[tuple[Any, int]]:
    return list(reader.leaf_readers()) if reader.doc_count_all() else []
