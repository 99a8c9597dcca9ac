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

import contextlib
import io
import mmap
import pickle
import struct
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3LeafMatcher, W3TermInfo, W3TermsReader
from whoosh.filedb.compound import SubFile
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
        # Segment id -> its mapping, None when it cannot be mapped (read through Whoosh).
        self._mapped: dict[str, MappedSegment | None] = {}
        self._entries: OrderedDict[tuple[str, str, bytes], tuple[Docnums, Weights] | None] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry (the segments stay mapped)."""
        self._entries.clear()
        self.bytes = 0

    def close(self) -> None:
        """Forget every entry and unmap every segment."""
        self.clear()
        self.keep_only(set())

    def get(self, leaf: Any, field: str, btext: bytes) -> tuple[Docnums, Weights] | None:
        """Return the segment's postings of a term (None: not in the segment), read once."""
        key = (leaf.segment().segment_id(), field, btext)
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
        found = self._read(key[0], leaf, field, btext)
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

    def _read(
        self, segment_id: str, leaf: Any, field: str, btext: bytes
    ) -> tuple[Docnums, Weights] | None:
        if segment_id not in self._mapped:
            try:
                self._mapped[segment_id] = MappedSegment(leaf)
            except (ValueError, OSError, AttributeError):
                self._mapped[segment_id] = None
        mapped = self._mapped[segment_id]
        if mapped is not None:
            with contextlib.suppress(UnreadablePostingsError):
                return mapped.postings(field, btext)
        return _segment_postings(leaf, field, btext)

    def keep_only(self, segment_ids: set[str]) -> None:
        """Forget the entries of segments not in ``segment_ids`` (merged away or removed)."""
        for segment_id in [s for s in self._mapped if s not in segment_ids]:
            mapped = self._mapped.pop(segment_id)
            if mapped is not None:
                mapped.close()
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
    offset, length = _extent(terminfo)
    return _decode_extent(terms._postfile.get(offset, length), length)


def _extent(terminfo: Any) -> tuple[int, int]:
    offset, length = terminfo.extent()
    # whoosh-reloaded 2.7.5's W3TermInfo.from_bytes keeps the length as a 1-tuple.
    return offset, length[0] if isinstance(length, tuple) else length


def _decode_extent(data: bytes, length: int) -> tuple[Docnums, Weights] | None:
    """Decode the blocks of one posting list (Whoosh 3 codec); None if they do not fit ``data``."""
    if len(data) != length or data[:4] != WHOOSH3_HEADER_MAGIC:
        return None
    # Gathered as Python lists and converted once: most lists are a few blocks long, and two
    # NumPy calls per block cost more than the decoding itself.
    deltas: list[int] = []
    weights: list[float] = []
    counts: list[int] = []
    stream = io.BytesIO(data)
    position = 4
    while True:
        if position + 4 > length:
            return None  # no last block inside the extent: let the matcher read it
        (block_length,) = _BLOCK_LENGTH.unpack_from(data, position)
        end = position + 4 + abs(block_length)
        stream.seek(position + 4)
        # The index's own files, unpickled exactly as Whoosh's matcher unpickles them.
        count, _, _, compression, _, _ = pickle.load(stream)  # noqa: S301
        block = data[stream.tell() : end]
        if compression:
            block = zlib.decompress(block)
        block_deltas, block_weights = pickle.loads(block)[:2]  # noqa: S301
        if len(block_deltas) != count:
            return None
        deltas.extend(block_deltas)
        counts.append(count)
        if block_weights is None:  # every weight 1.0
            weights.extend([1.0] * count)
        elif isinstance(block_weights, float):  # every weight the same
            weights.extend([block_weights] * count)
        else:
            weights.extend(block_weights)  # float32 values, widened exactly
        position = end
        if block_length < 0:  # the last block
            break
    if len(weights) != len(deltas):
        return None
    # Each block's ids are delta-coded from 0: a running sum over all blocks, minus the sum of
    # the blocks before (integers, exact).
    ids = np.cumsum(np.asarray(deltas, dtype=np.int64))
    if len(counts) > 1:
        ends = np.cumsum(counts)
        ids -= np.repeat(np.concatenate(([0], ids[ends[:-1] - 1])), counts)
    return ids, np.asarray(weights, dtype=np.float64)


class UnreadablePostingsError(Exception):
    """A posting list the mapped reader cannot decode: read it through Whoosh instead."""


class MappedSegment:
    """One compound segment's term table and postings, read from a read-only shared mapping.

    Whoosh reads its on-disk hash table of terms with four to six seeks and reads of the
    compound file per lookup, each several Python calls deep; a query looks every term up in
    every text field of every segment (about half of a query's CPU at 10k campaigns once the
    postings were read by extent, for terms not in the cache). The same probe over a mapping is
    a few ``unpack_from`` calls. The
    mapping is the segment file's own pages (the page cache, shared by every worker), so it
    costs no private memory. The lookup is filetables.OrderedHashReader.ranges_for_key and the
    decoding W3TermsReader's (whoosh-reloaded 2.7.5); a test compares every term of an index.
    """

    def __init__(self, leaf: Any) -> None:
        """Map ``leaf``'s compound file; raise ValueError when it is not laid out as expected."""
        terms: Any = getattr(leaf, "_terms", None)
        if type(terms) is not W3TermsReader:
            raise ValueError("not a Whoosh 3 terms reader")
        table_file: Any = getattr(terms._tindex.dbfile, "file", None)
        post_file: Any = getattr(terms._postfile, "file", None)
        if type(table_file) is not SubFile or type(post_file) is not SubFile:
            raise ValueError("not a compound segment")
        self._map = mmap.mmap(table_file._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._table_base = table_file._offset
        self._post_base = post_file._offset
        self._tables = terms._tindex.tables
        self._hash = terms._tindex.hashfn
        self._fields = terms._fieldmap

    def close(self) -> None:
        """Unmap the file."""
        self._map.close()

    def postings(self, field: str, btext: bytes) -> tuple[Docnums, Weights] | None:
        """Return the segment's postings of a term, None when the segment does not have it."""
        number = self._fields.get(field)
        if number is None:
            return None
        data = self._term_info(_FIELD_NUMBER.pack(number) + btext)
        if data is None:
            return None
        terminfo = W3TermInfo.from_bytes(data)
        if terminfo.is_inlined():
            # Whoosh's matcher reads these (whoosh-reloaded 2.7.5 cannot write them: its
            # W3PostingsWriter calls a set_inline that W3TermInfo lacks).
            raise UnreadablePostingsError(f"{field}:{btext!r} is inlined")
        offset, length = _extent(terminfo)
        start = self._post_base + offset
        found = _decode_extent(self._map[start : start + length], length)
        if found is None:
            raise UnreadablePostingsError(f"{field}:{btext!r}")
        return found

    def _term_info(self, key: bytes) -> bytes | None:
        keyhash = self._hash(key)
        table_start, slots = self._tables[keyhash & 255]
        if not slots:
            return None
        base, mapped = self._table_base, self._map
        table_end = table_start + slots * _SLOT.size
        position = table_start + ((keyhash >> 8) % slots) * _SLOT.size
        for _ in range(slots):
            slot_hash, item = _SLOT.unpack_from(mapped, base + position)
            if not item:
                return None
            if slot_hash == keyhash:
                key_length, data_length = _LENGTHS.unpack_from(mapped, base + item)
                if key_length == len(key):
                    key_start = base + item + _LENGTHS.size
                    if mapped[key_start : key_start + key_length] == key:
                        data_start = key_start + key_length
                        return mapped[data_start : data_start + data_length]
            position += _SLOT.size
            if position == table_end:
                position = table_start
        return None


# whoosh.filedb.filetables' slot (hash, item position) and item header (key, data lengths),
# and the field number W3TermsReader puts before a term's bytes.
_SLOT = struct.Struct("!Iq")
_LENGTHS = struct.Struct("!ii")
_FIELD_NUMBER = struct.Struct("!H")


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
