"""The vector scan screened (numkong float16) against the plain exact scan, on a bench's files.

Run: .venv/bin/python bench/scan_screen.py VECTORS_DIR MODELS_DIR [--rounds 3]

VECTORS_DIR is ``<data dir>/index/vectors`` of a data directory kept by
``bench/search_bench.py --keep`` (the e5 and USE files the server mapped); MODELS_DIR its
``models`` folder. Each model's file is opened as a worker opens it (mapped), and every query is
searched both ways back to back (order alternating), limit 100 as the search service asks:
thread CPU time per search, and whether both returned the same ids, order and scores (within
1e-6). Two query sets: the bench's query texts encoded by the real models, and stored rows plus
noise (a query close to some passages, as real queries are to real passages; the bench's rows
are random).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.search_bench import QUERIES  # noqa: E402  # after the sys.path line above
from search import vector  # noqa: E402
from search.embedder import load_embedders  # noqa: E402
from search.vector import VectorIndex  # noqa: E402

LIMIT = 100  # kb/searching/service.py CANDIDATES


def main() -> None:
    """Print CPU ms per search, screened and plain, per model and both together."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vectors_dir", type=Path)
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # as a web worker
    vector.limit_blas_threads()
    indexes: dict[str, VectorIndex] = {}
    for name, dim in (("e5", 384), ("use", 512)):
        rows_file = next(args.vectors_dir.glob(f"{name}-*.rows.npy"))
        index = VectorIndex(name, dim)
        index.open_file(rows_file.with_name(rows_file.name.removesuffix(".rows.npy")))
        indexes[name] = index
    embedders = {e.name: e for e in load_embedders("e5,use", args.models_dir, num_threads=1)}
    rng = np.random.default_rng(0)
    texts = [q.text for q in QUERIES]
    query_sets: dict[str, dict[str, np.ndarray]] = {"bench query texts": {}, "rows + noise": {}}
    for name, index in indexes.items():
        query_sets["bench query texts"][name] = embedders[name].encode_queries(texts)
        base = index._snapshot().base
        near = vector.widened(base[rng.integers(0, len(base), len(texts))])
        noise = rng.standard_normal(near.shape).astype(np.float32) / np.sqrt(index.dim)
        query_sets["rows + noise"][name] = near + 0.3 * noise
    print(
        f"scan_screen {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; rows "
        + ", ".join(f"{n} {len(i):,} × {i.dim}" for n, i in indexes.items())
        + f"; {len(texts)} queries × {args.rounds} rounds; limit {LIMIT}"
    )
    for label, queries in query_sets.items():
        cpu: dict[tuple[str, bool], list[float]] = {(n, s): [] for n in indexes for s in (1, 0)}
        same = total = 0
        for round_ in range(args.rounds):
            for i in range(len(texts)):
                for name, index in indexes.items():
                    found = {}
                    for screen in (True, False) if (i + round_) % 2 else (False, True):
                        vector.SCREEN = screen
                        started = time.thread_time()
                        found[screen] = index.search(queries[name][i], limit=LIMIT)
                        cpu[(name, screen)].append((time.thread_time() - started) * 1000)
                    a, b = found[True], found[False]
                    total += 1
                    same += [c for c, _ in a] == [c for c, _ in b] and all(
                        abs(x[1] - y[1]) < 1e-6 for x, y in zip(a, b, strict=True)
                    )
        print(f"\n== {label}: same top-{LIMIT} (ids, order, scores within 1e-6) {same}/{total}")
        print(
            f"  {'CPU ms per search':24}{'screened p50':>14}{'p95':>8}{'plain p50':>12}{'p95':>8}"
        )
        rows = {name: (cpu[(name, True)], cpu[(name, False)]) for name in indexes}
        rows["both models"] = (
            list(np.sum([cpu[(n, True)] for n in indexes], axis=0)),
            list(np.sum([cpu[(n, False)] for n in indexes], axis=0)),
        )
        for name, (screened, plain) in rows.items():
            print(
                f"  {name:24}{np.median(screened):14.2f}{np.percentile(screened, 95):8.2f}"
                f"{np.median(plain):12.2f}{np.percentile(plain, 95):8.2f}"
                f"   plain / screened p50 {np.median(plain) / np.median(screened):.2f}×"
            )
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
