"""Cosine search over passage embeddings, ranking campaigns by their best passages.

Every row is scored (no approximate index); rows are held as float16, so a cosine is exact to
≈ 5e-5. Rows live in one matrix, each campaign's passages in one contiguous block, so a per-
campaign maximum is one ``np.maximum.reduceat`` over block starts: no sort, no per-row id array
(the campaign ids are kept per block). A replacement appends a new block and tombstones the old
one; the matrix grows by half when full and is rewritten without dead blocks when more than a
quarter of its rows are dead, so writes cost amortized O(passages written).

A full scan is screened (_screened_top): numkong scores every row to within a proven error
bound, and only the campaigns that bound leaves in the running are scored exactly, so the
results are the exact scan's. A mapped file's rows are screened from an int8 copy derived from
them (_Int8Copy: files beside the float16 ones, mapped by every process of the host; half the
bytes, ≈ 1.9x less CPU than the float16 kernel at 675k rows), and the few campaigns scored
exactly are read from the float16 file with pread, so a worker keeps none of it mapped
(_RowsReader); rows written since the file (the tail) are screened as float16.

Readers never lock for long: a search takes the current ``_State`` (array references and counts)
under the lock and works on that. Writers only append past the rows a published state covers,
and replace the ``alive`` flags copy-on-write, so a state never changes once published.

A mapped file may come with an approximate graph over its rows (search.ann, built once per
host): a search then asks the graph for the nearest rows, and scores exactly every passage of
their campaigns and of the campaigns written since the file (the in-memory tail), skipping
tombstoned ones. Filters over few rows, small files and graphs that did not reach the recall
bar when they were built are answered by the exact scan.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from search import ann

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]

# Rows are stored as float16: at 10k campaigns the two models' ≈ 135k passages take 120 MB
# instead of 240 MB of each worker's memory. A cosine moves by ≈ 5e-5 (10 bits per component,
# errors averaging out over 384+ components); the dot products themselves run in float32 (_dot).
# bfloat16 (used before) has 7 bits: errors up to 4e-4, and NumPy has no
# bfloat16 type, so every row went through two integer passes per query; torch widens float16
# with the CPU's conversion instructions (F16C, on every x86 CPU with AVX2): 0.05 ms per 4096 ×
# 384 rows against 2.8 ms for NumPy's float16 cast (bench/results/latency_breakdown.txt).
Stored = npt.NDArray[np.float16]
_T = TypeVar("_T", bound=np.generic)
STORED_DTYPE = np.float16
# Rows widened to float32 per step of _dot: 4096 × 512 × 4 bytes = 8 MB of scratch at most.
_DOT_CHUNK_ROWS = 4096

# Campaign score = best passage cosine + SECOND_PASSAGE_WEIGHT × max(second-best cosine, 0).
# The bonus favours a campaign that matches in two places over one lucky passage, but is small
# enough never to outweigh a clearly better best passage; negative cosines give no bonus, so a
# one-passage campaign is not favoured over a many-passage one.
SECOND_PASSAGE_WEIGHT = 0.1
# Rewrite the matrix when more than this share of its rows belong to replaced/removed campaigns.
MAX_DEAD_FRACTION = 0.25
# Grow capacity by this factor: amortized O(1) appends at 1.5× peak memory rather than 2×.
GROWTH = 1.5
# With an `allowed` set covering fewer rows than this share, copy those rows out and score only
# them; above it, scoring every row is cheaper than the copy (measured in bench/vector_bench.py).
GATHER_FRACTION = 0.2
_MIN_ROWS = 1024
_LOAD_CHUNK_ROWS = 16_384
# search_many with at least this many queries scores them together (``_batched_top``), rows
# gathered this many at a time (≈ 12 MB of float16 rows and 2.4 MB of scores per 40 queries).
BATCH_QUERIES = 8
_BATCH_ROWS = 16_384
# NumPy's OpenBLAS starts one thread per core. A scan is memory-bound, and on a busy 2-core box
# its threads wait for each other: 10k campaigns' e5 scan took p50 630 ms with 2 BLAS threads
# against 37 ms with one (load average 10; bench/results/latency_breakdown.txt). Web workers
# parallelize across requests and the search's own pool instead.
BLAS_THREADS = 1
# With a graph, the campaigns it found are ranked by its own (bf16) cosines and this many per
# result wanted are scored exactly: the second-passage bonus can lift one above a better best.
RESCORED_PER_RESULT = 2
# How often a process whose mapped file has no graph yet looks for one (another process builds it).
ANN_CHECK_S = 5.0
# Screen a full scan with numkong's float16 kernel and score exactly only the campaigns that can
# place (_screened_top): same results. The kernel alone takes 1.4-1.6x less CPU than widening every
# row through torch; the whole search 1.15x less at load 5.5 and 1.5x at load 15 (it reads the
# rows once and writes no float32 copy, which matters when other processes share the memory bus):
# 67k rows × 384 / 512 at 10k campaigns, AVX2 (bench/scan_screen.py; bench/results/
# search_latency_session7.txt). False: the plain exact scan (tests compare the two).
SCREEN = True
_blas_limited = False
_blas_lock = threading.Lock()


def limit_blas_threads(threads: int = BLAS_THREADS) -> None:
    """Cap the process's BLAS threads (once; later calls do nothing)."""
    global _blas_limited
    with _blas_lock:
        if _blas_limited:
            return
        _blas_limited = True
        try:
            # Installed with scikit-learn, which sentence-transformers requires.
            from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
        except ImportError:  # pragma: no cover  # then BLAS keeps its default
            return
        threadpool_limits(limits=threads, user_api="blas")


@dataclass(frozen=True, slots=True)
class _State:
    """A published view of the index; the first ``rows``/``blocks`` entries never change."""

    matrix: Stored  # (row capacity, dim) float16: rows [len(base), rows) at [0, rows - len(base))
    rows: int
    starts: Ids  # per block: first row
    lengths: Ids  # per block: passage count (never 0)
    owners: Ids  # per block: campaign id
    alive: npt.NDArray[np.bool_]  # per block: False once replaced or removed
    blocks: int
    dead_rows: int
    # Rows [0, len(base)): a read-only file mapped by every process of the host (open_file); the
    # rows written since live in ``matrix``. Empty for an index built in memory.
    base: Stored
    # An approximate graph over the base rows (search.ann); None: every search scans.
    graph: ann.Graph | None = None
    # The base rows' int8 copy the screen reads instead of their float16 (see _Int8Copy);
    # None: the screen reads the float16 rows (an index built in memory, or no int8 kernel).
    int8: _Int8Copy | None = None

    def rows_between(self, start: int, end: int) -> Stored:
        """Return rows [start, end) (a view when they lie on one side of the base)."""
        nb = len(self.base)
        if end <= nb:
            return self.base[start:end]
        if start >= nb:
            return self.matrix[start - nb : end - nb]
        return np.concatenate([self.base[start:], self.matrix[: end - nb]])

    def take(self, rows: npt.NDArray[np.intp]) -> Stored:
        """Return the rows at these indices, in order (a copy)."""
        nb = len(self.base)
        if nb == 0:
            # mode="clip" skips take's buffered bounds check.
            return self.matrix.take(rows, axis=0, mode="clip")
        out = np.empty((len(rows), self.matrix.shape[1]), dtype=STORED_DTYPE)
        in_base = rows < nb
        out[in_base] = self.base.take(rows[in_base], axis=0, mode="clip")
        out[~in_base] = self.matrix.take(rows[~in_base] - nb, axis=0, mode="clip")
        return out


@dataclass(frozen=True, slots=True)
class _Int8Copy:
    """An int8 copy of a mapped file's rows, with what bounds its error, in files beside it.

    Row i of block b is stored as ``mean + scale[b] × int8 row i + residual``: the mean of all
    rows is taken out first (a sentence model's rows share a large common direction, so what
    is left is smaller and rounds more finely), ``scale[b]`` is the block's largest component
    left over / 127. ``residual[b]`` and ``norm[b]`` are the block's largest ‖residual‖ and
    ‖scale[b] × int8 row‖, rounded up: with them a cosine computed from the int8 row is
    within a proven bound of the exact one (_int8_error). Derived from the float16 rows when a
    file is mapped (_int8_copy), never written to; every process maps the same pages.
    """

    rows: npt.NDArray[np.int8]  # (rows of the file, dim)
    scale: npt.NDArray[np.float64]  # per block of the file
    residual: npt.NDArray[np.float64]
    norm: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]  # (dim,)
    # Reads the float16 rows of the campaigns left to score exactly, without the mapping.
    source: _RowsReader


class _RowsReader:
    """Read float16 rows of a file with pread rather than through its mapping.

    Pages read this way go through the page cache, one copy for every process of the host
    like the mapping's, but they are never mapped into this process: with the int8 copy
    screening every row, a worker's resident memory (RSS, PSS) holds the int8 copy and none
    of the float16 file, whose pages the kernel may drop again when memory runs short. Through
    the mapping, each exactly-scored campaign mapped in far more than its rows (fault-around,
    and the page cache's large folios mapped whole: reading 15 rows of a 280k-row file made
    26 MB resident), and after 20 queries 379 of e5's 494 MB at 675k rows were resident.
    """

    def __init__(self, path: Path, data_offset: int, dim: int) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        self._closer = weakref.finalize(self, os.close, self.fd)
        self.data_offset = data_offset
        self.dim = dim

    def blocks(self, starts: Ids, lengths: Ids) -> Stored:
        """Return the rows of these blocks of the file, laid end to end."""
        out = np.empty((int(lengths.sum()), self.dim), dtype=STORED_DTYPE)
        if len(out) == 0:
            return out
        buffer = out.data.cast("B")  # the rows as bytes, for preadv to fill
        row_bytes = self.dim * out.itemsize
        ends = starts + lengths
        # Blocks that follow one another in the file are read in one call.
        breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
        at = 0
        for first, last in zip(
            np.r_[0, breaks].tolist(), np.r_[breaks, len(starts)].tolist(), strict=True
        ):
            size = int(ends[last - 1] - starts[first]) * row_bytes
            where = self.data_offset + int(starts[first]) * row_bytes
            if os.preadv(self.fd, [buffer[at : at + size]], where) != size:
                raise OSError(f"vector file shorter than its {len(out)} rows")
            at += size
        return out


def _empty_state(dim: int, row_capacity: int = _MIN_ROWS, block_capacity: int = 128) -> _State:
    return _State(
        matrix=np.empty((row_capacity, dim), dtype=STORED_DTYPE),
        rows=0,
        starts=np.empty(block_capacity, dtype=np.int64),
        lengths=np.empty(block_capacity, dtype=np.int64),
        owners=np.empty(block_capacity, dtype=np.int64),
        alive=np.zeros(block_capacity, dtype=np.bool_),
        blocks=0,
        dead_rows=0,
        base=np.empty((0, dim), dtype=STORED_DTYPE),
    )


class VectorIndex:
    """An in-memory exact cosine index of one embedding model's passage vectors."""

    def __init__(self, model: str, dim: int) -> None:
        limit_blas_threads()
        self.model = model
        self.dim = dim
        self._state = _empty_state(dim)
        self._block_of: dict[int, int] = {}  # campaign id -> alive block; writers only
        self._lock = threading.Lock()  # guards publishing and reading `_state`
        self._write_lock = threading.Lock()  # one writer at a time; held through slow copies
        self._prefix: Path | None = None  # the file mapped as the base, whose graph is looked for
        self._graph_checked_at = float("-inf")
        self._graph_tried: float | None = None  # mtime of the calibration file last opened
        # Passages written or dropped since this index was made (reads of a file do not count):
        # an edit that keeps a campaign's passage count moves this, not ``len``.
        self._changed_rows = 0

    def __len__(self) -> int:
        """Return the number of live passages."""
        state = self._snapshot()
        return state.rows - state.dead_rows

    @property
    def changed_rows(self) -> int:
        """Return how many passages were written or dropped since this index was made: what
        moved under a statistic of the rows (the relevance floor's calibration) since it was
        computed, when the live count alone did not move (an edited campaign)."""
        return self._changed_rows

    def campaigns(self) -> set[int]:
        """Return the ids of the campaigns in the index."""
        state = self._snapshot()
        live = state.alive[: state.blocks]
        return set(state.owners[: state.blocks][live].tolist())

    def replace(self, campaign_id: int, vectors: npt.ArrayLike) -> None:
        """Swap all passages of one campaign for these (n, dim) vectors; none removes it."""
        rows = self._prepare(vectors)
        if len(rows) == 0:
            self.remove([campaign_id])
            return
        with self._write_lock:
            state = self._tombstoned(self._state, [campaign_id])
            self._changed_rows += state.dead_rows - self._state.dead_rows + len(rows)
            state = self._reserved(state, len(rows))
            r, b = state.rows, state.blocks
            # Past every published state's `rows`/`blocks`: readers never look here.
            at = r - len(state.base)
            state.matrix[at : at + len(rows)] = to_stored(rows)
            state.starts[b], state.lengths[b], state.owners[b] = r, len(rows), campaign_id
            alive = state.alive if state.alive is not self._state.alive else state.alive.copy()
            alive[b] = True
            state = dataclasses.replace(state, rows=r + len(rows), blocks=b + 1, alive=alive)
            self._block_of[campaign_id] = b
            self._publish(self._compacted_if_sparse(state))

    def remove(self, campaign_ids: Iterable[int]) -> None:
        """Drop every passage of these campaigns; unknown ids are ignored."""
        with self._write_lock:
            state = self._tombstoned(self._state, campaign_ids)
            self._changed_rows += state.dead_rows - self._state.dead_rows
            self._publish(self._compacted_if_sparse(state))

    def load(self, campaign_ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Replace the whole index with these rows: one campaign id per row, in any order."""
        ids = np.asarray(campaign_ids, dtype=np.int64).reshape(-1)
        source = np.asarray(vectors)
        if source.ndim != 2 or source.shape[1] != self.dim or len(source) != len(ids):
            msg = f"expected {len(ids)} × {self.dim} vectors, got shape {source.shape}"
            raise ValueError(msg)
        n = len(ids)
        order = np.argsort(ids, kind="stable")  # each campaign's rows become one block
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.diff(sorted_ids, prepend=sorted_ids[:1] - 1))
        blocks = len(starts)
        state = _empty_state(self.dim, max(_MIN_ROWS, int(n * GROWTH)), int(blocks * GROWTH) + 1)
        for a in range(0, n, _LOAD_CHUNK_ROWS):  # chunked: no second full-size temporary
            chunk = order[a : a + _LOAD_CHUNK_ROWS]
            state.matrix[a : a + len(chunk)] = to_stored(self._prepare(source[chunk]))
        state.starts[:blocks] = starts
        state.lengths[:blocks] = np.diff(starts, append=n)
        state.owners[:blocks] = sorted_ids[starts]
        state.alive[:blocks] = True
        with self._write_lock:
            self._changed_rows += n
            self._block_of = dict(zip(sorted_ids[starts].tolist(), range(blocks), strict=True))
            self._publish(dataclasses.replace(state, rows=n, blocks=blocks))

    def search(
        self, query: npt.ArrayLike, *, limit: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """Return up to ``limit`` (campaign id, score) pairs, best first, ties by id.

        The score is ``best + SECOND_PASSAGE_WEIGHT × max(second best, 0)`` over the campaign's
        passage cosines. With ``allowed``, only those campaigns are scored.
        """
        return self.search_many(np.asarray(query).reshape(1, -1), limit=limit, allowed=allowed)[0]

    def search_many(
        self, queries: npt.ArrayLike, *, limit: int, allowed: set[int] | None = None
    ) -> list[list[tuple[int, float]]]:
        """Return ``search`` results for each row of a (m, dim) query matrix (one GEMM)."""
        q = self._prepare(queries)
        state = self._with_graph_if_built(self._snapshot())
        if limit <= 0 or state.blocks == 0 or (allowed is not None and not allowed):
            return [[] for _ in q]
        sel = self._selected_blocks(state, allowed)
        starts, lengths, owners = state.starts[sel], state.lengths[sel], state.owners[sel]
        if len(owners) == 0:
            return [[] for _ in q]
        wanted_rows = int(lengths.sum())
        if allowed is not None and wanted_rows < GATHER_FRACTION * state.rows:
            # Few rows: copy them out (a screened file's with pread, as _block_rows says why).
            sub = _block_rows(state, starts, lengths)
            starts = _offsets(lengths)
            scores = _dot(q, sub)
            best = np.maximum.reduceat(scores, starts, axis=1)
        elif state.graph is not None:
            wanted = np.zeros(state.blocks, dtype=np.bool_)
            wanted[sel] = True
            # The graph's neighbours include rows of tombstoned and filtered-out campaigns:
            # explore proportionally more to keep as many wanted ones.
            share = wanted_rows / max(1, state.rows)
            graph = state.graph
            return [_approximate_top(state, graph, row, wanted, limit, share) for row in q]
        elif len(q) >= BATCH_QUERIES:
            return _batched_top(q, state, sel, limit)
        elif (screen := _screen_kernel(self.dim)) is not None:
            return [_screened_top(screen, state, row, sel, limit) for row in q]
        else:
            scores = _scan(q, state)
            best = np.maximum.reduceat(scores, state.starts[: state.blocks], axis=1)[:, sel]
        return [_top(scores[i], best[i], starts, lengths, owners, limit) for i in range(len(q))]

    def save(self, prefix: Path, *, map_after: bool = False) -> int:
        """Write the live rows to ``<prefix>.rows.npy`` and their campaigns to ``.blocks.npy``.

        Return the number of rows written. Both files are flushed to disk; replacing a pointer
        to them atomically is the caller's part. Writes to the index may go on meanwhile: a
        published state never changes, and the files hold the one taken at the start. With
        ``map_after``, the index then serves from the file (as ``open_file``) unless it was
        written to meanwhile.
        """
        state = self._snapshot()
        keep = np.flatnonzero(state.alive[: state.blocks])
        lengths = state.lengths[keep]
        n = int(lengths.sum())
        rows_path, blocks_path = _file_paths(prefix)
        rows_file = np.lib.format.open_memmap(
            rows_path, mode="w+", dtype=STORED_DTYPE, shape=(n, self.dim)
        )
        at = 0
        step = _LOAD_CHUNK_ROWS // 8  # blocks per copy: bounded temporaries
        for a in range(0, len(keep), step):
            part = keep[a : a + step]
            chunk = state.take(_ranges(state.starts[part], state.lengths[part]))
            rows_file[at : at + len(chunk)] = chunk
            at += len(chunk)
        rows_file.flush()
        del rows_file
        np.save(blocks_path, np.stack([state.owners[keep], lengths]))
        for path in (rows_path, blocks_path):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if SCREEN:  # the writer derives the int8 copy, before any pointer names the file
            _int8_copy(prefix, np.load(rows_path, mmap_mode="c"), _offsets(lengths), lengths)
        if map_after:
            with self._write_lock:
                if self._snapshot() is state:
                    self._open(prefix)
        return n

    def open_file(self, prefix: Path) -> None:
        """Replace the index with the rows ``save`` wrote under ``prefix``, mapped from the file.

        The rows are not read into this process: every process that opens the same file shares
        the operating system's one copy of its pages. Later writes go to memory beside it.
        Raise ValueError for files of another shape or type (and OSError if they are missing).
        """
        with self._write_lock:
            self._open(prefix)

    def _open(self, prefix: Path) -> None:
        rows_path, blocks_path = _file_paths(prefix)
        # "c" (copy on write) rather than "r": the pages are the same shared ones, and torch
        # accepts a writable array without a warning. Nothing ever writes to them.
        base = np.load(rows_path, mmap_mode="c")
        owners, lengths = np.load(blocks_path)
        if base.dtype != STORED_DTYPE or base.ndim != 2 or base.shape[1] != self.dim:
            raise ValueError(f"{rows_path}: expected float16 rows of {self.dim}, got {base.shape}")
        if (lengths <= 0).any() or int(lengths.sum()) != len(base):
            raise ValueError(f"{blocks_path}: block lengths do not add up to {len(base)} rows")
        blocks = len(owners)
        state = _empty_state(self.dim, _MIN_ROWS, int(blocks * GROWTH) + 1)
        state.starts[:blocks] = _offsets(lengths)
        state.lengths[:blocks] = lengths
        state.owners[:blocks] = owners
        state.alive[:blocks] = True
        self._block_of = dict(zip(owners.tolist(), range(blocks), strict=True))
        self._prefix = prefix
        self._graph_checked_at = time.monotonic()
        self._graph_tried = _calibration_mtime(prefix)
        graph = _opened_graph(prefix, len(base), self.dim)
        int8 = _int8_copy(prefix, base, state.starts[:blocks], lengths) if SCREEN else None
        self._publish(
            dataclasses.replace(
                state, rows=len(base), blocks=blocks, base=base, graph=graph, int8=int8
            )
        )

    def _with_graph_if_built(self, state: _State) -> _State:
        """Return ``state`` with its file's graph once another process has built it."""
        prefix = self._prefix
        if state.graph is not None or prefix is None or len(state.base) == 0:
            return state
        now = time.monotonic()
        if now - self._graph_checked_at < ANN_CHECK_S:
            return state
        self._graph_checked_at = now
        mtime = _calibration_mtime(prefix)
        if mtime is None or mtime == self._graph_tried:  # none yet, or tried and failed
            return state
        with self._write_lock:
            current = self._snapshot()
            if current.graph is not None or self._prefix != prefix or len(current.base) == 0:
                return current
            self._graph_tried = mtime
            graph = _opened_graph(prefix, len(current.base), self.dim)
            if graph is not None:
                current = dataclasses.replace(current, graph=graph)
                self._publish(current)
            return current

    def graph_calibration(self) -> ann.Calibration | None:
        """Return how the graph in use was calibrated; None when every search scans."""
        graph = self._with_graph_if_built(self._snapshot()).graph
        return None if graph is None else graph.calibration

    def unsaved_rows(self) -> int:
        """Return how many rows live in this process's memory rather than in a mapped file."""
        state = self._snapshot()
        return state.rows - len(state.base)

    def centroid(self) -> Vectors:
        """Return the mean of the live passage vectors (zeros when there are none)."""
        state = self._snapshot()
        total = np.zeros(self.dim, dtype=np.float64)
        count = state.rows - state.dead_rows
        if count <= 0:
            return total.astype(np.float32)
        live_rows = np.repeat(state.alive[: state.blocks], state.lengths[: state.blocks])
        for start in range(0, state.rows, _DOT_CHUNK_ROWS):
            end = min(start + _DOT_CHUNK_ROWS, state.rows)
            rows = widened(state.rows_between(start, end)[live_rows[start:end]])
            total += rows.sum(axis=0, dtype=np.float64)
        return (total / count).astype(np.float32)

    def _snapshot(self) -> _State:
        with self._lock:
            return self._state

    def _publish(self, state: _State) -> None:
        with self._lock:
            self._state = state

    def _prepare(self, vectors: npt.ArrayLike) -> Vectors:
        """Return the vectors as float32 (n, dim) rows of unit length; zero rows stay zero."""
        rows = np.array(vectors, dtype=np.float32, ndmin=2)  # a copy: never alias the caller's
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            msg = f"expected vectors of dimension {self.dim}, got shape {rows.shape}"
            raise ValueError(msg)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        if not np.isfinite(norms).all():
            raise ValueError("vectors contain NaN or infinity")
        np.divide(rows, norms, out=rows, where=norms > 0)
        return rows

    def _selected_blocks(self, state: _State, allowed: set[int] | None) -> npt.NDArray[np.intp]:
        live = state.alive[: state.blocks]
        if allowed is not None:
            wanted = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
            live = live & np.isin(state.owners[: state.blocks], wanted)
        return np.flatnonzero(live)

    def _tombstoned(self, state: _State, campaign_ids: Iterable[int]) -> _State:
        doomed = [b for c in campaign_ids if (b := self._block_of.pop(int(c), None)) is not None]
        if not doomed:
            return state
        alive = state.alive.copy()  # copy-on-write: published states keep their flags
        alive[doomed] = False
        dead = int(state.lengths[doomed].sum())
        return dataclasses.replace(state, alive=alive, dead_rows=state.dead_rows + dead)

    def _reserved(self, state: _State, rows: int) -> _State:
        used = state.rows - len(state.base)
        if used + rows <= len(state.matrix) and state.blocks < len(state.starts):
            return state
        if len(state.base):
            return _tail_grown(state, rows)  # the mapped rows stay shared
        live = state.rows - state.dead_rows + rows
        return self._rebuilt(state, max(_MIN_ROWS, int(live * GROWTH)))

    def _compacted_if_sparse(self, state: _State) -> _State:
        if state.dead_rows <= MAX_DEAD_FRACTION * state.rows:
            return state
        live = state.rows - state.dead_rows
        return self._rebuilt(state, max(_MIN_ROWS, int(live * GROWTH)))

    def _rebuilt(self, state: _State, row_capacity: int) -> _State:
        """Copy the live blocks into fresh arrays; renumber blocks in ``_block_of``."""
        keep = np.flatnonzero(state.alive[: state.blocks])
        lengths = state.lengths[keep]
        fresh = _empty_state(self.dim, row_capacity, max(128, int(len(keep) * GROWTH) + 1))
        n = int(lengths.sum())
        # Write lock held, read lock not: searches go on against the old arrays meanwhile. A mapped
        # base is copied in too: more than MAX_DEAD_FRACTION of the rows were replaced.
        for a in range(0, len(keep), _LOAD_CHUNK_ROWS // 8):  # bounded temporaries
            part = keep[a : a + _LOAD_CHUNK_ROWS // 8]
            at = int(lengths[:a].sum())
            chunk = state.take(_ranges(state.starts[part], state.lengths[part]))
            fresh.matrix[at : at + len(chunk)] = chunk
        blocks = len(keep)
        fresh.starts[:blocks] = _offsets(lengths)
        fresh.lengths[:blocks] = lengths
        fresh.owners[:blocks] = state.owners[keep]
        fresh.alive[:blocks] = True
        self._block_of = dict(zip(fresh.owners[:blocks].tolist(), range(blocks), strict=True))
        return dataclasses.replace(fresh, rows=n, blocks=blocks)


def to_stored(rows: Vectors) -> Stored:
    """Round float32 rows to float16 (nearest, ties to even)."""
    source = np.ascontiguousarray(rows, dtype=np.float32)
    out = np.empty(source.shape, dtype=STORED_DTYPE)
    _convert(source, out)
    return out


def widened(stored: Stored) -> Vectors:
    """Return stored float16 rows as float32 (exact)."""
    source = np.ascontiguousarray(stored, dtype=STORED_DTYPE)
    out = np.empty(source.shape, dtype=np.float32)
    _convert(source, out)
    return out


def _convert(source: npt.NDArray[Any], out: npt.NDArray[Any]) -> None:
    """Copy ``source`` into ``out`` of another float type, rounding to nearest (ties to even)."""
    torch = _torch()
    if torch is None or not source.flags.c_contiguous or not out.flags.c_contiguous:
        np.copyto(out, source, casting="unsafe")
        return
    torch.from_numpy(out).copy_(torch.from_numpy(source))


_TORCH_MISSING = object()
_torch_module: Any = None


def _torch() -> Any:
    """Return torch if installed (imported on first use: ≈ 2 s), else None."""
    global _torch_module
    if _torch_module is None:
        try:
            import torch
        except ImportError:  # pragma: no cover  # NumPy's slower cast does the same rounding
            _torch_module = _TORCH_MISSING
        else:
            _torch_module = torch
    return None if _torch_module is _TORCH_MISSING else _torch_module


def _dot(queries: Vectors, rows: Stored) -> Vectors:
    """Return ``queries @ widened(rows).T`` in float32, widening a chunk of rows at a time."""
    out = np.empty((len(queries), len(rows)), dtype=np.float32)
    scratch = np.empty((min(_DOT_CHUNK_ROWS, len(rows)), rows.shape[1]), dtype=np.float32)
    for start in range(0, len(rows), _DOT_CHUNK_ROWS):
        n = min(_DOT_CHUNK_ROWS, len(rows) - start)
        _convert(rows[start : start + n], scratch[:n])
        out[:, start : start + n] = queries @ scratch[:n].T
    return out


def _screened_top(
    screen: Any, state: _State, query: Vectors, sel: npt.NDArray[np.intp], limit: int
) -> list[tuple[int, float]]:
    """Return exactly what the full scan's ``_top`` returns, scoring most rows only roughly.

    Every row is scored once by numkong (_rough_rows: the int8 copy of a mapped file, float16
    otherwise), to within a bound per block of the exact cosine. The campaigns that can still
    place given those bounds are then scored exactly (``_dot``, every passage) and ranked by
    ``_top``: the same scores, ids and order as the full exact scan (tests/search/
    test_vector_screen.py, test_vector_int8.py).
    """
    rough, multiplier, offset, error = _rough_rows(screen, state, query)
    # Every block, tombstoned ones too, is reduced in place (blocks tile the rows in order):
    # cheaper than gathering the selected ones' rows first. Multipliers are positive.
    best = np.maximum.reduceat(rough, state.starts[: state.blocks])[sel]
    multiplier, offset, error = multiplier[sel], offset[sel], error[sel]
    best = best * multiplier + offset
    starts, lengths, owners = state.starts[sel], state.lengths[sel], state.owners[sel]
    keep = np.arange(len(sel))
    if len(sel) > limit:
        # A campaign's score is at least its best cosine, so at least best - error, and at most
        # f(best + error) with f(x) = x + W × max(x, 0): the limit-th largest lower bound is a
        # floor under the true limit-th score, and a campaign whose ceiling is below it cannot
        # place (nor tie). Cheap: one value per campaign.
        low = best - error
        high = best + error
        high += SECOND_PASSAGE_WEIGHT * np.maximum(high, 0)
        kth = np.partition(low, len(low) - limit)[len(low) - limit]
        keep = np.flatnonzero(high >= kth)
    if len(keep) > limit:
        # The same with the rough second best too, for the campaigns left: a rough campaign
        # score is off by at most (1 + W) × error (best and second best each by the error).
        # Ties at the cut stay in: _top settles them by id.
        k_lengths = lengths[keep]
        values = rough[_ranges(starts[keep], k_lengths)]
        values = values * np.repeat(multiplier[keep], k_lengths) + np.repeat(
            offset[keep], k_lengths
        )
        score = _campaign_scores(values, _offsets(k_lengths), k_lengths)
        margin = (1 + SECOND_PASSAGE_WEIGHT) * error[keep] + 1e-6  # float32 sums in _top
        low = score - margin
        kth = np.partition(low, len(low) - limit)[len(low) - limit]
        keep = keep[score + margin >= kth]
    k_lengths = lengths[keep]
    exact = _dot(query.reshape(1, -1), _block_rows(state, starts[keep], k_lengths))[0]
    local = _offsets(k_lengths)
    k_best = np.maximum.reduceat(exact, local) if len(local) else exact[:0]
    return _top(exact, k_best, local, k_lengths, owners[keep], limit)


def _block_rows(state: _State, starts: Ids, lengths: Ids) -> Stored:
    """Return the float16 rows of these blocks (in this order), the file's read without mapping.

    Read so only when the int8 copy screens the file (see _RowsReader); else from the arrays.
    """
    int8 = state.int8 if INT8_SCREEN else None
    if int8 is None or len(starts) == 0:
        return state.take(_ranges(starts, lengths))
    in_file = starts < len(state.base)  # a block lies wholly in the file or in the tail
    out = np.empty((int(lengths.sum()), state.matrix.shape[1]), dtype=STORED_DTYPE)
    file_rows = np.repeat(in_file, lengths)
    out[file_rows] = int8.source.blocks(starts[in_file], lengths[in_file])
    tail = ~in_file
    out[~file_rows] = state.take(_ranges(starts[tail], lengths[tail]))
    return out


def _batched_top(
    queries: Vectors, state: _State, sel: npt.NDArray[np.intp], limit: int
) -> list[list[tuple[int, float]]]:
    """Return the full exact scan's ``_top`` for every query, reading the rows once for all.

    The screened path reads every row once per query: at 1.35 M passages the relevance floor's
    calibration (dozens of background queries, limit 1) took ≈ 18 s on a 2-core AVX2 box. Here
    the selected blocks are taken a group of ≤ _BATCH_ROWS rows at a time, scored for all
    queries in one GEMM, and ranked per group by ``_top``; the groups' top ``limit`` lists are
    merged by the same order (score descending, then id). A campaign of the overall top
    ``limit`` is in its own group's, so the merge is the full scan's answer.
    """
    found: list[list[tuple[int, float]]] = [[] for _ in queries]
    ends = np.cumsum(state.lengths[sel])
    first = 0
    while first < len(sel):
        # At least one block per group, however long; else blocks up to _BATCH_ROWS rows.
        base = ends[first - 1] if first else 0
        last = max(first + 1, int(np.searchsorted(ends, base + _BATCH_ROWS, side="right")))
        group = sel[first:last]
        starts, lengths, owners = state.starts[group], state.lengths[group], state.owners[group]
        scores = _dot(queries, state.take(_ranges(starts, lengths)))
        local = _offsets(lengths)
        best = np.maximum.reduceat(scores, local, axis=1)
        for i in range(len(queries)):
            found[i].extend(_top(scores[i], best[i], local, lengths, owners, limit))
        first = last
    return [sorted(pairs, key=lambda pair: (-pair[1], pair[0]))[:limit] for pairs in found]


def _campaign_scores(
    scores: npt.NDArray[np.float64], starts: Ids, lengths: Ids
) -> npt.NDArray[np.float64]:
    """Return best + W × max(second best, 0) per block of rows tiled by ``starts``/``lengths``.

    As _top scores its candidates; two passages sharing the best cosine make it the second too.
    """
    best = np.maximum.reduceat(scores, starts)
    is_best = scores == np.repeat(best, lengths)
    second = np.maximum.reduceat(np.where(is_best, -np.inf, scores), starts)
    ties = np.add.reduceat(is_best, starts, dtype=np.int32) > 1
    second = np.where(ties, best, second)
    return best + SECOND_PASSAGE_WEIGHT * np.maximum(second, 0)


# Rows of stored float16 vectors have length ≤ 1 + 2^-11 (each component rounded to nearest).
_ROW_NORM_BOUND = 1.001
# numkong's float16 kernels accumulate in float32; the self-check bounds their rounding by this
# many float32 ulps per component (a kernel that accumulates in float16 fails it).
_SCREEN_ULPS = 2.0


def _screen_error(query: Vectors) -> float:
    """Bound |rough − exact cosine| for this query against any stored row.

    The query's float16 rounding moves a cosine by at most ‖q − f16(q)‖ × ‖row‖ (Cauchy-
    Schwarz); products of two float16 values are exact in float32, and the float32 sums of the
    kernel and of the exact scan (_dot) each err by at most dim × 2^-24 × Σ|q_i r_i| ≤ that ×
    ‖q‖ ‖row‖ (Higham's γ_n); doubled, with a little room, for both.
    """
    q = query.reshape(-1).astype(np.float64)
    rounding = float(np.linalg.norm(q - q.astype(np.float16).astype(np.float64)))
    summing = _SCREEN_ULPS * len(q) * 2.0**-24 * float(np.linalg.norm(q))
    return 1.01 * _ROW_NORM_BOUND * (rounding + 2 * summing) + 1e-7


def _screen_scan(screen: Any, query: Vectors, state: _State) -> npt.NDArray[np.float64]:
    """Return the rough cosine of every used row of ``state`` (float16 kernel, float64 out)."""
    q16 = query.reshape(1, -1).astype(np.float16)
    nb = len(state.base)
    out = np.empty(state.rows, dtype=np.float64)
    # numkong refuses empty inputs: the mapped base and the tail are scored apart.
    if nb:
        out[:nb] = np.asarray(screen.cdist(q16, state.base, metric="dot"))[0]
    if state.rows > nb:
        tail = state.matrix[: state.rows - nb]
        out[nb:] = np.asarray(screen.cdist(q16, tail, metric="dot"))[0]
    return out


# Use the int8 copy of a mapped file for the screen (False: its float16 rows; for comparisons).
INT8_SCREEN = True
# Files of fewer rows get no int8 copy. Its bound (≈ 0.015 in a cosine against ≈ 3e-4 for the
# float16 rows) leaves ≈ 5x more campaigns to score exactly, read one pread each: at 67k rows
# (10k campaigns) that cost as much as the halved scan saved (0.95x the float16 screen's CPU),
# at 200k rows it was 1.79x less CPU per search, at 675k 1.86x (bench/results/
# vector_scan_session9.txt; the crossover between 67k and 200k was not looked for).
INT8_MIN_ROWS = 200_000
_INT8_SUFFIXES = (".int8.npy", ".int8blocks.npy", ".int8mean.npy")


def _int8_paths(prefix: Path) -> tuple[Path, Path, Path]:
    rows, blocks, mean = (prefix.with_name(prefix.name + s) for s in _INT8_SUFFIXES)
    return rows, blocks, mean


def _int8_copy(prefix: Path, base: Stored, starts: Ids, lengths: Ids) -> _Int8Copy | None:
    """Return the int8 copy of the file's rows, building its files first if there are none.

    None for a file of fewer than INT8_MIN_ROWS rows, or when numkong's int8 kernel is missing
    or inexact here: the screen reads float16.
    Built by ``save`` (its writer) or, for a file written before this copy existed, by the
    first process that maps it; several building at once each write their own temporary
    files and replace, so a reader sees whole files only. The build is deterministic (same
    rows, same steps), so a reader that maps one file of one build and the next of another
    still gets bounds that fit its rows.
    """
    dim = base.shape[1]
    if len(base) < INT8_MIN_ROWS or _int8_kernel(dim) is None:
        return None
    offset = int(getattr(base, "offset", -1))  # where np.load's memmap found the rows
    if offset < 0:
        raise ValueError(f"{prefix.name}: the float16 rows are not a mapped file")
    with _int8_build_lock:
        try:
            return _int8_opened(prefix, len(base), len(starts), dim, offset)
        except (OSError, ValueError) as error:
            if not isinstance(error, FileNotFoundError):
                log.warning("int8 copy of %s unusable, building it again: %r", prefix.name, error)
        _int8_build(prefix, base, starts, lengths)
        return _int8_opened(prefix, len(base), len(starts), dim, offset)


_int8_build_lock = threading.Lock()


def _int8_opened(prefix: Path, rows: int, blocks: int, dim: int, data_offset: int) -> _Int8Copy:
    """Map the int8 files; ValueError when they do not fit the float16 file."""
    rows_path, blocks_path, mean_path = _int8_paths(prefix)
    int8 = np.load(rows_path, mmap_mode="r")
    per_block = np.load(blocks_path, mmap_mode="r")
    mean = np.load(mean_path)
    if (
        int8.dtype != np.int8
        or int8.shape != (rows, dim)
        or per_block.dtype != np.float64
        or per_block.shape != (3, blocks)
        or mean.dtype != np.float64
        or mean.shape != (dim,)
    ):
        raise ValueError(f"{rows_path}: does not fit {rows} rows of {dim} in {blocks} blocks")
    scale, residual, norm = per_block
    source = _RowsReader(_file_paths(prefix)[0], data_offset, dim)
    return _Int8Copy(rows=int8, scale=scale, residual=residual, norm=norm, mean=mean, source=source)


def _int8_build(prefix: Path, base: Stored, starts: Ids, lengths: Ids) -> None:
    """Write the int8 copy of ``base`` (see _Int8Copy), a group of blocks at a time.

    In float32 (float64 took 2.4-2.8x as long: 100k rows × 384 / 512 in 3.1 / 5.0 s against
    1.3 / 1.8 s, load 7-8 on 2 cores): each float32 step errs by at most 2^-24 of its
    operands' size, so the computed norms of what is left over and of the scaled int8 rows
    (all of length ≤ 2) are within 1e-4 relative + 1e-6 of the true ones; both are rounded up
    by that much, so they stay bounds. The mean is kept as float32
    values (stored as float64): the query side uses the very numbers the rows were reduced by.
    """
    n, dim = base.shape
    total = np.zeros(dim, dtype=np.float64)
    for a in range(0, n, _LOAD_CHUNK_ROWS):
        total += widened(base[a : a + _LOAD_CHUNK_ROWS]).sum(axis=0, dtype=np.float64)
    mean32 = (total / max(n, 1)).astype(np.float32)
    per_block = np.empty((3, len(starts)), dtype=np.float64)
    token = f"{os.getpid()}-{threading.get_ident()}.tmp"
    paths = _int8_paths(prefix)
    temps = [path.with_name(f"{path.name}.{token}") for path in paths]
    try:
        int8 = np.lib.format.open_memmap(temps[0], mode="w+", dtype=np.int8, shape=(n, dim))
        step = _LOAD_CHUNK_ROWS // 8  # blocks per group: bounded temporaries
        for a in range(0, len(starts), step):
            part = slice(a, min(a + step, len(starts)))
            first, last = int(starts[part][0]), int(starts[part][-1] + lengths[part][-1])
            x = widened(base[first:last])
            x -= mean32
            local = starts[part] - first
            # In place and without abs/divide temporaries: twice as fast as the plain NumPy.
            largest = np.maximum.reduceat(np.maximum(x.max(axis=1), -x.min(axis=1)), local)
            scale = np.where(largest > 0, largest / np.float32(127), np.float32(1))
            row_scale = np.repeat(scale, lengths[part])[:, None]
            # Any integers would do (the bound is computed from the ones stored); nearest is best.
            stored = x * (1 / row_scale)
            np.rint(stored, out=stored)
            np.clip(stored, -127, 127, out=stored)
            int8[first:last] = stored
            stored *= row_scale  # float32 products of the stored scale: what a query uses
            per_block[0, part] = scale
            x -= stored
            residual = np.sqrt(np.einsum("ij,ij->i", x, x))
            per_block[1, part] = np.maximum.reduceat(residual, local) * (1 + 1e-4) + 1e-6
            norm = np.sqrt(np.einsum("ij,ij->i", stored, stored))
            per_block[2, part] = np.maximum.reduceat(norm, local) * (1 + 1e-4) + 1e-6
        int8.flush()
        del int8
        for temp, array in zip(temps[1:], (per_block, mean32.astype(np.float64)), strict=True):
            with open(temp, "wb") as handle:
                np.save(handle, array)
        for temp in temps:
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
        for temp, path in zip(temps, paths, strict=True):
            os.replace(temp, path)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


def _int8_error(
    int8: _Int8Copy, query: Vectors
) -> tuple[npt.NDArray[np.int8], float, npt.NDArray[np.float64]]:
    """Return the query as int8, its scale, and per block of the file a bound on the error.

    With q = s·q̂ + ρ (s the query's largest component / 127) and a row x = mean + S·x̂ + r
    (_Int8Copy), q·x = q·mean + s·S·(q̂·x̂) + ρ·(S·x̂) + q·r exactly, and q̂·x̂ is an exact
    integer sum: the rough cosine q·mean + s·S·(q̂·x̂) is off by at most ‖ρ‖·norm + ‖q‖·residual
    (Cauchy-Schwarz). The exact scan's float32 sums (_dot) err by at most dim × 2^-24 × ‖q‖ ‖x‖
    besides (Higham's γ_n, doubled as _screen_error does), and the rest is float64 rounding.
    """
    q = query.reshape(-1).astype(np.float64)
    largest = float(np.abs(q).max())
    scale = largest / 127 if largest > 0 else 1.0
    q_int = np.clip(np.rint(q / scale), -127, 127)
    rounding = float(np.linalg.norm(q - q_int * scale)) * (1 + 1e-9) + 1e-12
    q_norm = float(np.linalg.norm(q)) * (1 + 1e-9)
    summing = 2 * _SCREEN_ULPS * len(q) * 2.0**-24 * q_norm * _ROW_NORM_BOUND
    error = rounding * int8.norm + q_norm * int8.residual + summing + 1e-7
    return q_int.astype(np.int8), scale, error


_int8_checked: dict[int, Any] = {}


def _int8_kernel(dim: int) -> Any:
    """Return numkong when its int8 dot products are exact here (checked once per dimension)."""
    with _screen_lock:
        if dim not in _int8_checked:
            _int8_checked[dim] = _checked_int8_kernel(dim)
            if _int8_checked[dim] is None:
                log.warning("numkong's int8 dot products are not exact: screening float16 rows")
        return _int8_checked[dim]


def _checked_int8_kernel(dim: int) -> Any:
    try:
        import numkong
    except ImportError:  # pragma: no cover  # installed with usearch, a dependency
        return None
    rng = np.random.default_rng(dim)
    rows = rng.integers(-127, 128, (256, dim), dtype=np.int8)
    rows[:2] = 127  # the largest sums, both signs: an int16 accumulator overflows
    rows[2:4] = -127
    queries = rng.integers(-127, 128, (4, dim), dtype=np.int8)
    queries[0] = 127
    for query in queries:
        rough = np.asarray(numkong.cdist(query[None], rows, metric="dot"))[0]
        if not np.array_equal(rough, rows.astype(np.int64) @ query.astype(np.int64)):
            return None
    return numkong


def _rough_rows(
    screen: Any, state: _State, query: Vectors
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]:
    """Return rough values per row and, per block, (multiplier, offset, error bound).

    Block b's rough cosines are its rows' values × multiplier[b] + offset[b], each within
    error[b] of the exact scan's cosine. Rows of the file are read from its int8 copy when it
    has one (the integer sums, scaled per block), the others from the float16 rows.
    """
    blocks = state.blocks
    int8 = state.int8 if INT8_SCREEN else None
    if int8 is None:
        error = np.full(blocks, _screen_error(query))
        return _screen_scan(screen, query, state), np.ones(blocks), np.zeros(blocks), error
    nb = len(state.base)
    rough = np.empty(state.rows, dtype=np.float64)
    q_int, q_scale, file_error = _int8_error(int8, query)
    # The copy exists only where the int8 kernel passed its check (_int8_copy); screen is numkong.
    if nb:  # numkong refuses empty inputs
        rough[:nb] = np.asarray(screen.cdist(q_int[None], int8.rows, metric="dot"))[0]
    if state.rows > nb:
        tail = state.matrix[: state.rows - nb]
        q16 = query.reshape(1, -1).astype(np.float16)
        rough[nb:] = np.asarray(screen.cdist(q16, tail, metric="dot"))[0]
    in_file = len(int8.scale)
    multiplier = np.ones(blocks)
    multiplier[:in_file] = q_scale * int8.scale
    offset = np.zeros(blocks)
    offset[:in_file] = float(query.reshape(-1).astype(np.float64) @ int8.mean)
    error = np.full(blocks, _screen_error(query))
    error[:in_file] = file_error
    return rough, multiplier, offset, error


_screen_checked: dict[int, Any] = {}
_screen_lock = threading.Lock()


def _screen_kernel(dim: int) -> Any:
    """Return numkong when its float16 dot products are good to _screen_error here, else None.

    Checked once per dimension and process against float64 dot products of random unit
    vectors: a kernel that sums in float16 (or any other surprise on this CPU) turns the
    screening off, and the exact scan answers (the same results, at the full scan's cost).
    """
    if not SCREEN:
        return None
    with _screen_lock:
        if dim in _screen_checked:
            return _screen_checked[dim]
        kernel = _checked_kernel(dim)
        if kernel is None:
            log.warning("numkong's float16 dot products are not float32-accurate: exact scan")
        _screen_checked[dim] = kernel
        return kernel


def _checked_kernel(dim: int) -> Any:
    try:
        import numkong
    except ImportError:  # pragma: no cover  # installed with usearch, a dependency
        return None
    rng = np.random.default_rng(dim)
    rows = to_stored(_unit(rng.standard_normal((256, dim))))
    for query in _unit(rng.standard_normal((4, dim))):
        q16 = query.astype(np.float16)
        rough = np.asarray(numkong.cdist(q16[None], rows, metric="dot"))[0]
        exact = rows.astype(np.float64) @ q16.astype(np.float64)
        summing = _SCREEN_ULPS * dim * 2.0**-24 * float(np.linalg.norm(query))
        if np.abs(rough - exact).max() > summing:
            return None
    return numkong


def _unit(rows: npt.NDArray[np.float64]) -> Vectors:
    out = rows.astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def build_graph_file(prefix: Path, dim: int) -> ann.Calibration:
    """Build, calibrate and save the approximate graph of the rows ``save`` wrote at ``prefix``.

    Slow (minutes at 100k campaigns): run it once per host, beside serving. The graph is
    measured against the exact scan of the same file (search.ann.calibrate) and saved with
    what was found, used or not; processes that mapped the file pick it up by themselves.
    """
    index = VectorIndex(prefix.name, dim)
    index.open_file(prefix)
    state = index._snapshot()
    started = time.perf_counter()
    usearch_index = ann.build_graph(state.base)
    build_s = time.perf_counter() - started
    pending = ann.Calibration(
        rows=len(state.base), dim=dim, build_s=build_s, expansion=0, recall=0.0,
        exact_ms=0.0, ann_ms=0.0, queries=ann.CALIBRATION_QUERIES,
    )  # fmt: skip
    graph = ann.Graph(usearch_index, pending)
    with_graph = dataclasses.replace(state, graph=graph)
    wanted = np.ones(state.blocks, dtype=np.bool_)
    limit = ann.CALIBRATION_LIMIT

    def exact(queries: Vectors) -> list[list[int]]:
        return [[c for c, _ in hits] for hits in index.search_many(queries, limit=limit)]

    def approximate(queries: Vectors, expansion: int) -> list[list[int]]:
        return [
            [c for c, _ in _approximate_top(with_graph, graph, q, wanted, limit, 1.0, expansion)]
            for q in queries
        ]

    expansion, recall, exact_ms, ann_ms = ann.calibrate(graph, state.base, exact, approximate)
    calibration = dataclasses.replace(
        pending, expansion=expansion, recall=recall, exact_ms=exact_ms, ann_ms=ann_ms
    )
    ann.save(usearch_index, calibration, prefix)
    return calibration


def _calibration_mtime(prefix: Path) -> float | None:
    try:
        return ann.paths(prefix)[1].stat().st_mtime
    except OSError:
        return None


def _opened_graph(prefix: Path, rows: int, dim: int) -> ann.Graph | None:
    """Return the graph saved for this file if it is to be used; log and scan when unusable."""
    try:
        return ann.open_graph(prefix, rows=rows, dim=dim)
    except ann.AnnFileError as error:
        log.warning("approximate vector index unusable, searching exactly: %s", error)
        return None


def _approximate_top(
    state: _State,
    graph: ann.Graph,
    query: Vectors,
    wanted: npt.NDArray[np.bool_],
    limit: int,
    share: float,
    expansion: int | None = None,
) -> list[tuple[int, float]]:
    """Rank the campaigns of the rows the graph finds, and every wanted tail campaign, exactly.

    ``wanted`` flags the blocks that may be returned (alive, allowed); ``share`` is their share
    of the rows, by which the graph explores more. ``expansion`` overrides the calibrated one.
    """
    nb = len(state.base)
    base_blocks = int(np.searchsorted(state.starts[: state.blocks], nb))  # blocks in the file
    if expansion is None:
        expansion = graph.calibration.expansion
    count = int(expansion * max(1.0, limit / ann.CALIBRATION_LIMIT) / max(share, 0.05))
    rows, cosines = graph.nearest(query, count)
    row_blocks = np.searchsorted(state.starts[:base_blocks], rows, side="right") - 1
    keep_rows = wanted[row_blocks]
    row_blocks, cosines = row_blocks[keep_rows], cosines[keep_rows]
    # Each found campaign's best cosine by the graph; only the RESCORED_PER_RESULT × limit best
    # are scored exactly (every passage, so the second best counts too).
    order = np.lexsort((-cosines, row_blocks))
    first = np.flatnonzero(np.diff(row_blocks[order], prepend=-1))
    blocks, approx_best = row_blocks[order][first], cosines[order][first]
    if len(blocks) > RESCORED_PER_RESULT * limit:
        blocks = blocks[np.argsort(-approx_best, kind="stable")[: RESCORED_PER_RESULT * limit]]
    found = np.sort(blocks)
    g_starts, g_lengths = state.starts[found], state.lengths[found]
    q = query.reshape(1, -1)
    gathered = _dot(q, state.base.take(_ranges(g_starts, g_lengths), axis=0, mode="clip"))[0]
    # The tail is contiguous in memory: scan it in place rather than copy it out.
    tail_blocks = np.arange(base_blocks, state.blocks)
    tail = _dot(q, state.matrix[: state.rows - nb])[0]
    scores = np.concatenate([gathered, tail])
    starts = np.concatenate([_offsets(g_lengths), state.starts[tail_blocks] - nb + len(gathered)])
    lengths = np.concatenate([g_lengths, state.lengths[tail_blocks]])
    owners = np.concatenate([state.owners[found], state.owners[tail_blocks]])
    if len(starts) == 0:
        return []
    # reduceat over every block, the tombstoned tail ones too: each segment ends at the next start.
    best = np.maximum.reduceat(scores, starts)
    keep = np.concatenate([np.ones(len(found), dtype=np.bool_), wanted[tail_blocks]])
    if not keep.any():
        return []
    starts, lengths, owners, best = starts[keep], lengths[keep], owners[keep], best[keep]
    return _top(scores, best, starts, lengths, owners, limit)


def _file_paths(prefix: Path) -> tuple[Path, Path]:
    return prefix.with_name(prefix.name + ".rows.npy"), prefix.with_name(
        prefix.name + ".blocks.npy"
    )


def _scan(queries: Vectors, state: _State) -> Vectors:
    """Return the cosines of every used row of ``state``, mapped base first."""
    nb = len(state.base)
    if nb == 0:
        return _dot(queries, state.matrix[: state.rows])
    out = np.empty((len(queries), state.rows), dtype=np.float32)
    out[:, :nb] = _dot(queries, state.base)
    out[:, nb:] = _dot(queries, state.matrix[: state.rows - nb])
    return out


def _tail_grown(state: _State, rows: int) -> _State:
    """Return ``state`` with room for ``rows`` more rows and a block, its base kept as is."""
    used = state.rows - len(state.base)
    matrix = state.matrix
    if used + rows > len(matrix):
        matrix = np.empty(
            (max(_MIN_ROWS, int((used + rows) * GROWTH)), matrix.shape[1]), STORED_DTYPE
        )
        matrix[:used] = state.matrix[:used]
    state = dataclasses.replace(state, matrix=matrix)
    if state.blocks < len(state.starts):
        return state
    capacity = int(state.blocks * GROWTH) + 1
    return dataclasses.replace(
        state,
        starts=_grown(state.starts, state.blocks, capacity),
        lengths=_grown(state.lengths, state.blocks, capacity),
        owners=_grown(state.owners, state.blocks, capacity),
        alive=_grown(state.alive, state.blocks, capacity),
    )


def _grown(array: npt.NDArray[_T], used: int, capacity: int) -> npt.NDArray[_T]:
    """Return a zeroed array of ``capacity`` entries starting with ``array[:used]``."""
    grown = np.zeros(capacity, dtype=array.dtype)
    grown[:used] = array[:used]
    return grown


def _offsets(lengths: Ids) -> Ids:
    """Return where each block starts once the blocks are laid end to end."""
    return np.cumsum(lengths) - lengths


def _ranges(starts: Ids, lengths: Ids) -> npt.NDArray[np.intp]:
    """Return the row indices of the blocks, concatenated."""
    shift = np.repeat(starts - _offsets(lengths), lengths)
    return (shift + np.arange(int(lengths.sum()))).astype(np.intp)


def _top(
    scores: Vectors, best: Vectors, starts: Ids, lengths: Ids, owners: Ids, limit: int
) -> list[tuple[int, float]]:
    """Rank blocks by best + bonus; compute the second best only for blocks that can place."""
    candidates = np.arange(len(best))
    if len(best) > limit:
        # score ∈ [best, best + W·max(best, 0)]: a block whose ceiling is below the limit-th
        # best `best` is beaten by at least `limit` blocks, so skip its second-best pass.
        kth = np.partition(best, len(best) - limit)[len(best) - limit]
        ceiling = best + SECOND_PASSAGE_WEIGHT * np.maximum(best, 0)
        candidates = np.flatnonzero(ceiling >= kth)
    c_best, c_lengths = best[candidates], lengths[candidates]
    passage = scores[_ranges(starts[candidates], c_lengths)]
    local = _offsets(c_lengths)
    is_best = passage == np.repeat(c_best, c_lengths)
    second = np.maximum.reduceat(np.where(is_best, np.float32(-np.inf), passage), local)
    # Two passages sharing the best cosine: the second best is that cosine too.
    ties = np.add.reduceat(is_best, local, dtype=np.int32) > 1
    second = np.where(ties, c_best, second)
    final = c_best + np.float32(SECOND_PASSAGE_WEIGHT) * np.maximum(second, np.float32(0))
    c_owners = owners[candidates]
    if len(final) > limit:
        cut = np.partition(final, len(final) - limit)[len(final) - limit]
        keep = np.flatnonzero(final >= cut)  # ties at the cut stay, the id order settles them
        final, c_owners = final[keep], c_owners[keep]
    order = np.lexsort((c_owners, -final))[:limit]
    return [(int(c_owners[i]), float(final[i])) for i in order]
