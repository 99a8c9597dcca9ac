"""Measure VectorIndex: load time, matrix memory, search latency, replace cost.

Synthetic unit vectors, rows handed to ``load`` in shuffled order (as a database scan might).
Queries are stored passages plus noise, so each has a few strong matches as real queries do.
One BLAS thread by default, as each web worker runs (OPENBLAS_NUM_THREADS=2 to compare).

Run: .venv/bin/python bench/vector_bench.py [--campaigns 10000 100000] [--dims 384 512]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Before NumPy loads OpenBLAS, or the setting is ignored; set it in the shell to try others.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import statistics
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search import vector
from search.vector import VectorIndex


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> npt.NDArray[np.float32]:
    """Return n random float32 unit vectors, generated in chunks to bound temporaries."""
    out = np.empty((n, dim), dtype=np.float32)
    for a in range(0, n, 65_536):
        chunk = rng.standard_normal((min(65_536, n - a), dim), dtype=np.float32)
        out[a : a + len(chunk)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


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
    scores = state.matrix[: state.rows] @ (query / np.linalg.norm(query))
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
    args = parser.parse_args()
    print(
        f"NumPy {np.__version__}, OpenBLAS threads {os.environ['OPENBLAS_NUM_THREADS']}, limit {args.limit}"
    )
    for dim in args.dims:
        for n_campaigns in args.campaigns:
            bench(n_campaigns, args.passages, dim, args)


if __name__ == "__main__":
    main()
