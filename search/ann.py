"""An approximate nearest-passage graph (HNSW, usearch) over the rows of a saved vector file.

The graph answers "which stored rows are nearest this query" in far fewer row reads than a scan
(search.vector re-scores the campaigns of those rows exactly, so only a campaign the graph never
reached can be missing). It is built once per host from a rows file ``VectorIndex.save`` wrote,
saved beside it as ``<prefix>.ann.usearch`` and memory-mapped (``view``) by every process, which
shares the operating system's one copy of its pages.

Whether the graph is used, and how far each query explores it, is decided when it is built, by
measuring: sample queries (stored rows plus noise) are ranked at campaign level by the exact scan
and by the graph at growing expansions; the smallest expansion whose recall@100 reaches
TARGET_RECALL is kept, in ``<prefix>.ann.json``, with the recall and both timings. When no
expansion reaches it, or the graph is not faster than the scan it would replace (random vectors
at scale: every row is about as near as every other, so no graph finds the top 100 cheaply),
the file says so and searches stay exact.

usearch: Apache-2.0, one C++ header with Python wheels; stores rows in bf16 (the CPU's
avx512_bf16 instructions, where present, make its distances fast), saves to one file and maps
it read-only. hnswlib cannot map a saved index (every worker would load its own copy); faiss's
HNSW cannot either without its on-disk IVF, and is a larger dependency.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

# Graph degree and build-time exploration: usearch's defaults (16, 128) measured on clustered and
# random vectors in bench/vector_bench.py; more links raise recall little and cost build time.
CONNECTIVITY = 16
EXPANSION_ADD = 128
# The bar of issue 17: campaign-level recall@100 against the exact scan.
TARGET_RECALL = 0.98
# Expansions tried, smallest first; a query asks for this many nearest rows (passages).
EXPANSIONS = (256, 512, 1024, 1536, 2048, 3072, 4096, 8192)
# Queries ranked when the graph is calibrated, and the campaign count their recall is taken at
# (the search service asks for 100 candidates per model).
CALIBRATION_QUERIES = 60
CALIBRATION_LIMIT = 100
# Used only when the calibrated query takes at most this share of the exact scan's time.
MAX_COST_SHARE = 0.5
# Threads that build the graph: one, so a build beside serving leaves the other core to it.
BUILD_THREADS = 1
FORMAT = 2  # 2: costs in CPU time (graphs calibrated by wall time are built again)

Rows = npt.NDArray[Any]  # (n, dim) float16 or float32
RankFn = Callable[[npt.NDArray[np.float32]], list[list[int]]]


class AnnFileError(Exception):
    """The graph file is missing, unreadable or does not fit its rows file."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """What building and measuring the graph found; kept beside it as JSON."""

    rows: int
    dim: int
    build_s: float
    expansion: int  # 0: the graph is not used
    recall: float  # at ``expansion`` (or the best reached when unused)
    exact_ms: float  # p50 CPU ms per query of the exact scan over the same rows
    ann_ms: float  # p50 CPU ms per query at ``expansion`` (graph search and exact re-scoring)
    queries: int
    format: int = FORMAT

    @property
    def used(self) -> bool:
        return self.expansion > 0


def paths(prefix: Path) -> tuple[Path, Path]:
    """Return the graph file and its calibration file for a vector file prefix."""
    return (
        prefix.with_name(prefix.name + ".ann.usearch"),
        prefix.with_name(prefix.name + ".ann.json"),
    )


class Graph:
    """A mapped graph over rows [0, rows) of one vector file; keys are row numbers."""

    def __init__(self, index: Any, calibration: Calibration) -> None:
        self._index = index
        self.calibration = calibration
        # usearch hands each search a per-thread scratch context; two Python threads searching
        # with threads=1 would share context 0. A query takes ≈ 1 ms: serialize them.
        self._lock = threading.Lock()

    @property
    def rows(self) -> int:
        return self.calibration.rows

    def nearest(
        self, query: npt.NDArray[np.float32], count: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
        """Return the ``count`` rows the graph finds nearest one query and their cosines.

        The cosines are the graph's (rows held in bf16: within ≈ 1e-3 of the exact ones).
        """
        count = max(1, min(count, self.rows))
        with self._lock:
            self._index.expansion_search = count
            found = self._index.search(query, count, threads=1)
        cosines = 1.0 - np.asarray(found.distances, dtype=np.float32)  # "ip" distance: 1 - dot
        return np.asarray(found.keys, dtype=np.intp), cosines


def build_graph(rows: Rows, *, threads: int | None = None) -> Any:
    """Return a usearch index over ``rows`` (unit vectors), keyed by row number."""
    from usearch.index import Index

    threads = threads or BUILD_THREADS

    index = Index(
        ndim=rows.shape[1],
        metric="ip",  # rows and queries are unit vectors: inner product is the cosine
        dtype="bf16",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
    )
    chunk = 16_384  # widened to float32 a chunk at a time: bounded temporaries
    for start in range(0, len(rows), chunk):
        part = np.asarray(rows[start : start + chunk], dtype=np.float32)
        keys = np.arange(start, start + len(part), dtype=np.uint64)
        index.add(keys, part, threads=threads)
    return index


def calibrate(
    graph: Graph,
    rows: Rows,
    exact: RankFn,
    approximate: Callable[[npt.NDArray[np.float32], int], list[list[int]]],
    *,
    seed: int = 0,
) -> tuple[int, float, float, float]:
    """Return (expansion, recall, exact ms, ann ms): the smallest expansion meeting the target.

    ``exact`` and ``approximate`` rank campaigns for each query (ids, best first); recall is
    the mean share of the exact top CALIBRATION_LIMIT the approximate one also returns.
    An expansion of 0 means none met TARGET_RECALL at less than MAX_COST_SHARE of the scan.
    """
    queries = sample_queries(rows, CALIBRATION_QUERIES, seed)
    exact_ms, truth = _timed(lambda q: exact(q[None, :])[0], queries)
    best = (0.0, float("inf"))
    for wanted in EXPANSIONS:
        expansion = min(wanted, graph.rows)  # every row: the last one worth trying
        ann_ms, found = _timed(functools.partial(_first, approximate, expansion), queries)
        recall = _recall(truth, found)
        if recall > best[0]:
            best = (recall, ann_ms)
        if ann_ms > MAX_COST_SHARE * exact_ms:
            break  # a wider search only costs more
        if recall >= TARGET_RECALL:
            return expansion, recall, exact_ms, ann_ms
        if expansion == graph.rows:
            break
    return 0, best[0], exact_ms, best[1]


def sample_queries(rows: Rows, count: int, seed: int) -> npt.NDArray[np.float32]:
    """Return stored rows plus noise, unit length: each has a few strong matches, as queries do."""
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(rows), size=min(count, len(rows)), replace=False))
    chosen = np.asarray(rows[picks], dtype=np.float32)
    noise = rng.standard_normal(chosen.shape, dtype=np.float32)
    noise *= 0.6 / np.sqrt(chosen.shape[1])  # the size of vector_bench's query noise
    queries = chosen + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return queries


def recall_at(truth: Sequence[Sequence[int]], found: Sequence[Sequence[int]]) -> float:
    """Return the mean share of each exact ranking that the other ranking also holds."""
    return _recall(truth, found)


def save(index: Any, calibration: Calibration, prefix: Path) -> None:
    """Write the graph and its calibration beside the rows file, each replaced atomically."""
    graph_path, meta_path = paths(prefix)
    token = f"{os.getpid()}-{time.time_ns()}"
    temp_graph = graph_path.with_name(f".{graph_path.name}.{token}.tmp")
    temp_meta = meta_path.with_name(f".{meta_path.name}.{token}.tmp")
    try:
        index.save(str(temp_graph))
        _fsync(temp_graph)
        temp_meta.write_text(json.dumps(asdict(calibration)), encoding="utf-8")
        _fsync(temp_meta)
        # The graph first: a calibration file always names a complete graph.
        os.replace(temp_graph, graph_path)
        os.replace(temp_meta, meta_path)
    finally:
        temp_graph.unlink(missing_ok=True)
        temp_meta.unlink(missing_ok=True)


def read_calibration(prefix: Path) -> Calibration | None:
    """Return the calibration saved for this prefix; None when there is none yet."""
    _, meta_path = paths(prefix)
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise AnnFileError(f"{meta_path}: {error!r}") from error
    try:
        calibration = Calibration(**raw)
    except TypeError as error:
        raise AnnFileError(f"{meta_path}: {error}") from error
    if calibration.format != FORMAT:
        raise AnnFileError(f"{meta_path}: format {calibration.format}, expected {FORMAT}")
    return calibration


def open_graph(prefix: Path, *, rows: int, dim: int) -> Graph | None:
    """Map the graph saved for ``prefix``; None when none is saved or it is not to be used.

    Raise AnnFileError when the files exist but are unreadable or do not fit ``rows`` × ``dim``.
    """
    calibration = read_calibration(prefix)
    if calibration is None or not calibration.used:
        return None
    if calibration.rows != rows or calibration.dim != dim:
        raise AnnFileError(
            f"{prefix.name}: graph of {calibration.rows} × {calibration.dim}, rows file "
            f"{rows} × {dim}"
        )
    graph_path, _ = paths(prefix)
    from usearch.index import Index

    try:
        meta = Index.metadata(str(graph_path))
        if not meta:
            raise AnnFileError(f"{graph_path}: missing or not a usearch file")
        if meta["dimensions"] != dim:
            raise AnnFileError(f"{graph_path}: {meta['dimensions']} dimensions, expected {dim}")
        index = Index.restore(str(graph_path), view=True)
    except AnnFileError:
        raise
    except Exception as error:  # usearch raises RuntimeError and others for damaged files
        raise AnnFileError(f"{graph_path}: {error!r}") from error
    if index is None or len(index) != rows:
        raise AnnFileError(
            f"{graph_path}: {0 if index is None else len(index)} rows, expected {rows}"
        )
    return Graph(index, calibration)


def _first(
    approximate: Callable[[npt.NDArray[np.float32], int], list[list[int]]],
    expansion: int,
    query: npt.NDArray[np.float32],
) -> list[int]:
    return approximate(query[None, :], expansion)[0]


def _timed(
    rank: Callable[[npt.NDArray[np.float32]], list[int]], queries: npt.NDArray[np.float32]
) -> tuple[float, list[list[int]]]:
    # CPU time of this thread, not wall time: the build runs beside serving on a busy box, where
    # wall time measured whichever of the two was preempted more (a 10k file of random vectors
    # was judged worth its graph at expansion 8192, then searched 3x slower than the scan).
    # Both run in this thread: one BLAS and one torch thread, usearch with threads=1 inline.
    times, results = [], []
    for query in queries:
        start = time.thread_time()
        results.append(rank(query))
        times.append((time.thread_time() - start) * 1000)
    return float(np.median(times)), results


def _recall(truth: Sequence[Sequence[int]], found: Sequence[Sequence[int]]) -> float:
    shares = [
        len(set(t) & set(f)) / len(t) for t, f in zip(truth, found, strict=True) if len(t) > 0
    ]
    return float(np.mean(shares)) if shares else 1.0


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
