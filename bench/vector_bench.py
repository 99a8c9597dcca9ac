"""Measure VectorIndex: load time, matrix memory, search latency, replace cost.

Synthetic unit vectors, rows handed to ``load`` in shuffled order (as a database scan might).
Queries are stored passages plus noise, so each has a few strong matches as real queries do.
One BLAS thread by default, as each web worker runs (OPENBLAS_NUM_THREADS=2 to compare).

Run: .venv/bin/python bench/vector_bench.py [--campaigns 10000 100000] [--dims 384 512]

With --ann, instead: the approximate graph (search/ann.py) per size and kind of vectors (random
unit vectors, the worst case for any graph, and clustered ones closer to real embeddings): build
seconds and file size, the expansion its calibration chose, campaign-level recall@100 against
the exact scan on held-out queries, and exact vs graph p50/p95 timed in the same run, round-robin.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Before NumPy loads OpenBLAS, or the setting is ignored; set it in the shell to try others.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import dataclasses
import resource
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search import ann, vector
from search.vector import VectorIndex, build_graph_file


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> npt.NDArray[np.float32]:
    """Return n random float32 unit vectors, generated in chunks to bound temporaries."""
    out = np.empty((n, dim), dtype=np.float32)
    for a in range(0, n, 65_536):
        chunk = rng.standard_normal((min(65_536, n - a), dim), dtype=np.float32)
        out[a : a + len(chunk)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def clustered_rows(
    rng: np.random.Generator, n_campaigns: int, passages: int, dim: int
) -> npt.NDArray[np.float32]:
    """Return rows shaped like sentence embeddings: one direction every row shares (real models'
    cosines between unrelated texts sit well above 0), 200 topics, the campaign's own direction
    and per-passage noise; two passages of one campaign have cosine ≈ 0.9, of one topic ≈ 0.7,
    unrelated ≈ 0.45. Campaign c's passages are rows [c·passages, (c+1)·passages)."""
    common = rng.standard_normal(dim, dtype=np.float32)
    common /= np.linalg.norm(common)
    topics = rng.standard_normal((200, dim), dtype=np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    topic = rng.integers(0, len(topics), n_campaigns)
    out = np.empty((n_campaigns * passages, dim), dtype=np.float32)
    step = 8192  # campaigns per chunk: bounded temporaries
    for a in range(0, n_campaigns, step):
        b = min(a + step, n_campaigns)
        own = rng.standard_normal((b - a, dim), dtype=np.float32)
        own /= np.linalg.norm(own, axis=1, keepdims=True)
        centre = np.repeat(common + 0.8 * topics[topic[a:b]] + 0.6 * own, passages, axis=0)
        noise = rng.standard_normal(centre.shape, dtype=np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        chunk = centre + 0.5 * noise
        out[a * passages : b * passages] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def bench_ann(
    n_campaigns: int, passages: int, dim: int, kind: str, args: argparse.Namespace
) -> None:
    """Build the graph of one file, print its calibration, recall and latency against exact."""
    rng = np.random.default_rng(11)
    n = n_campaigns * passages
    ids = np.repeat(np.arange(1, n_campaigns + 1, dtype=np.int64), passages)
    if kind == "random":
        rows = unit_rows(rng, n, dim)
    else:
        rows = clustered_rows(rng, n_campaigns, passages, dim)
    workdir = Path(tempfile.mkdtemp(prefix="kb-ann-bench-"))
    prefix = workdir / f"{kind}-{dim}"
    built = VectorIndex(prefix.name, dim)
    built.load(ids, rows)
    built.save(prefix)
    del built
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    calibration = build_graph_file(prefix, dim)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    graph_path, _ = ann.paths(prefix)
    rows_mb = Path(f"{prefix}.rows.npy").stat().st_size / 2**20
    print(
        f"{n_campaigns:>7,} campaigns × {passages} × {dim}, {kind:<9}: graph built in "
        f"{calibration.build_s:6.1f} s ({n / calibration.build_s:,.0f} rows/s, "
        f"{ann.BUILD_THREADS} thread), file {graph_path.stat().st_size / 2**20:,.0f} MB "
        f"beside {rows_mb:,.0f} MB of rows; peak RSS of the build +{rss_after - rss_before:,.0f} MB"
    )
    print(
        f"    calibration ({calibration.queries} queries): expansion {calibration.expansion or '-'}"
        f", recall@{ann.CALIBRATION_LIMIT} {calibration.recall:.3f}, graph {calibration.ann_ms:.2f}"
        f" ms against exact {calibration.exact_ms:.2f} ms: "
        + ("IN USE" if calibration.used else "not used (searches stay exact)")
    )
    index = VectorIndex(prefix.name, dim)
    index.open_file(prefix)
    exact = VectorIndex(prefix.name, dim)
    exact.open_file(prefix)
    exact._publish(dataclasses.replace(exact._snapshot(), graph=None))
    if index._snapshot().graph is None:  # not used: measure it anyway at the largest expansion
        forced = ann.Graph(
            _viewed(graph_path),
            dataclasses.replace(calibration, expansion=ann.EXPANSIONS[-1]),
        )
        index._publish(dataclasses.replace(index._snapshot(), graph=forced))
        label = f"graph at expansion {ann.EXPANSIONS[-1]} (forced)"
    else:
        label = f"graph at expansion {calibration.expansion}"
    # Held-out queries: other rows and other noise than the calibration's.
    queries = ann.sample_queries(rows, args.queries, seed=12345)
    limit = ann.CALIBRATION_LIMIT
    truth = [[c for c, _ in hits] for hits in exact.search_many(queries, limit=limit)]
    found = [[c for c, _ in index.search(q, limit=limit)] for q in queries]
    print(
        f"    held-out recall@{limit} ({len(queries)} queries), {label}: {ann.recall_at(truth, found):.3f}"
    )
    times: dict[str, list[float]] = {"exact": [], "graph": []}
    for _ in range(args.runs):
        for q in queries:  # round-robin: both see the same load
            for name, which in (("exact", exact), ("graph", index)):
                start = time.perf_counter()
                which.search(q, limit=limit)
                times[name].append((time.perf_counter() - start) * 1000)
    stats = {name: _p50_p95(values) for name, values in times.items()}
    (e50, e95), (g50, g95) = stats["exact"], stats["graph"]
    print(
        f"    search limit {limit}: exact p50 {e50:7.2f} / p95 {e95:7.2f} ms; graph p50 "
        f"{g50:7.2f} / p95 {g95:7.2f} ms; exact/graph {e50 / g50:.1f}× (p50) {e95 / g95:.1f}× (p95)"
    )
    for path in workdir.iterdir():
        path.unlink()
    workdir.rmdir()


def _viewed(path: Path) -> object:
    from usearch.index import Index

    return Index.restore(str(path), view=True)


def _p50_p95(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return values[len(values) // 2], values[max(0, int(len(values) * 0.95) - 1)]


def percentiles_ms(fn: Callable[[], object], queries: int, runs: int) -> tuple[float, float]:
    """Return the median over runs of the p50 and p95 of ``queries`` calls, in ms."""
    p50s, p95s = [], []
    for _ in range(runs):
        times = []
        for _ in range(queries):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p50s.append(times[len(times) // 2])
        p95s.append(times[int(len(times) * 0.95) - 1])
    return statistics.median(p50s), statistics.median(p95s)


def bench(n_campaigns: int, passages: int, dim: int, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(7)
    n = n_campaigns * passages
    ids = np.repeat(np.arange(1, n_campaigns + 1, dtype=np.int64), passages)
    rows = unit_rows(rng, n, dim)
    shuffle = rng.permutation(n)
    ids, rows = ids[shuffle], rows[shuffle]
    index = VectorIndex(f"synthetic-{dim}", dim)
    start = time.perf_counter()
    index.load(ids, rows)
    load_s = time.perf_counter() - start
    state = index._state
    used_mb = state.rows * dim * 4 / 2**20
    reserved_mb = state.matrix.nbytes / 2**20
    print(
        f"{n_campaigns:>7,} campaigns × {passages} × {dim}: load {load_s:.2f} s; matrix "
        f"{used_mb:,.0f} MB used, {reserved_mb:,.0f} MB reserved (untouched pages cost no RAM)"
    )

    picks = rng.integers(0, n, size=args.queries)
    noise = rng.standard_normal((args.queries, dim), dtype=np.float32) * (0.6 / np.sqrt(dim))
    queries = (rows[picks] + noise).astype(np.float32)
    allowed = {int(c) for c in rng.choice(n_campaigns, n_campaigns // 10, replace=False) + 1}
    cursor = iter(range(10**9))

    def one(allowed_set: set[int] | None) -> Callable[[], object]:
        def run() -> object:
            return index.search(
                queries[next(cursor) % len(queries)], limit=args.limit, allowed=allowed_set
            )

        return run

    for label, allowed_set in (("all", None), ("allowed 10%", allowed)):
        p50, p95 = percentiles_ms(one(allowed_set), args.queries, args.runs)
        print(f"    search {label:<12} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")
    batch = queries[:32]
    start = time.perf_counter()
    for _ in range(args.runs):
        index.search_many(batch, limit=args.limit)
    per_query = (time.perf_counter() - start) * 1000 / (args.runs * len(batch))
    print(f"    search_many (32 queries)   {per_query:7.2f} ms per query")
    if args.aggregation:
        aggregation(index, queries[0], args)
    if n_campaigns >= args.replace_at:
        replace_cost(index, rng, n_campaigns, passages, dim, args.replaces)


def aggregation(
    index: VectorIndex, query: npt.NDArray[np.float32], args: argparse.Namespace
) -> None:
    """Time the per-campaign aggregation alone, against the alternatives considered."""
    state = index._state
    scores = vector.widened(state.matrix[: state.rows]) @ (query / np.linalg.norm(query))
    starts, lengths = state.starts[: state.blocks], state.lengths[: state.blocks]
    owners = state.owners[: state.blocks]
    row_owner = np.repeat(np.arange(state.blocks), lengths)
    best = np.maximum.reduceat(scores, starts)

    def scatter_max() -> object:
        out = np.full(state.blocks, -np.inf, dtype=np.float32)
        np.maximum.at(out, row_owner, scores)
        return out

    def top2_every_block() -> object:
        # What `_top` would do without pruning: the second best of every block.
        is_best = scores == np.repeat(best, lengths)
        second = np.maximum.reduceat(np.where(is_best, np.float32(-np.inf), scores), starts)
        ties = np.add.reduceat(is_best, starts, dtype=np.int32) > 1
        final = best + 0.1 * np.maximum(np.where(ties, best, second), 0)
        return np.argpartition(-final, args.limit)[: args.limit]

    candidates: list[tuple[str, Callable[[], object]]] = [
        ("reduceat max only", lambda: np.maximum.reduceat(scores, starts)),
        ("maximum.at max only", scatter_max),
        ("top-2, every block", top2_every_block),
        ("top-2, pruned (used)", lambda: vector._top(scores, best, starts, lengths, owners, args.limit)),
    ]  # fmt: skip
    for label, fn in candidates:
        p50, _ = percentiles_ms(fn, 15, 3)
        print(f"    aggregate {label:<22} {p50:6.2f} ms")


def replace_cost(
    index: VectorIndex,
    rng: np.random.Generator,
    n_campaigns: int,
    passages: int,
    dim: int,
    count: int,
) -> None:
    """Time ``count`` replace() calls of random campaigns, rebuilds included."""
    fresh = unit_rows(rng, count * passages, dim).reshape(count, passages, dim)
    targets = rng.integers(1, n_campaigns + 1, size=count)
    times = []
    rebuilds = 0
    for target, vectors in zip(targets, fresh, strict=True):
        before = index._state.matrix
        start = time.perf_counter()
        index.replace(int(target), vectors)
        times.append((time.perf_counter() - start) * 1000)
        rebuilds += index._state.matrix is not before
    times.sort()
    print(
        f"    replace ×{count:,}: p50 {times[len(times) // 2]:.3f} ms, "
        f"p99 {times[int(len(times) * 0.99) - 1]:.3f} ms, max {times[-1]:.0f} ms, "
        f"mean {statistics.fmean(times):.3f} ms; {rebuilds} rebuild(s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--passages", type=int, default=8)
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 512])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--replaces", type=int, default=40_000)
    parser.add_argument("--replace-at", type=int, default=100_000)
    parser.add_argument("--aggregation", action="store_true", help="time aggregation variants")
    parser.add_argument("--ann", action="store_true", help="the approximate graph against exact")
    parser.add_argument("--kinds", nargs="+", default=["random", "clustered"])
    parser.add_argument(
        "--build-threads",
        type=int,
        default=ann.BUILD_THREADS,
        help="threads building each graph (the app builds with one, beside serving)",
    )
    args = parser.parse_args()
    print(
        f"NumPy {np.__version__}, OpenBLAS threads {os.environ['OPENBLAS_NUM_THREADS']}, limit {args.limit}"
    )
    vector._torch().set_num_threads(1)  # as each web worker runs (KB_TORCH_THREADS=1)
    if args.ann:
        ann.BUILD_THREADS = args.build_threads
        print(
            f"graph: usearch HNSW, connectivity {ann.CONNECTIVITY}, expansion_add "
            f"{ann.EXPANSION_ADD}, bf16 rows; target recall@{ann.CALIBRATION_LIMIT} "
            f"{ann.TARGET_RECALL}, expansions tried {ann.EXPANSIONS}; load avg "
            f"{os.getloadavg()[0]:.1f}"
        )
        for dim in args.dims:
            for n_campaigns in args.campaigns:
                for kind in args.kinds:
                    bench_ann(n_campaigns, args.passages, dim, kind, args)
        return
    for dim in args.dims:
        for n_campaigns in args.campaigns:
            bench(n_campaigns, args.passages, dim, args)


if __name__ == "__main__":
    main()
