"""The vector scan three ways: screened on the int8 copy, screened on float16 rows, plain exact.

Run on a bench's files:
    .venv/bin/python bench/scan_screen.py VECTORS_DIR MODELS_DIR [--rounds 3]
or on synthetic rows the size of 100k campaigns (no models needed):
    TMPDIR=... .venv/bin/python bench/scan_screen.py --synthetic [--rows 674892] [--rounds 3]

VECTORS_DIR is ``<data dir>/index/vectors`` of a data directory kept by
``bench/search_bench.py --keep`` (the e5 and USE files the server mapped); MODELS_DIR its
``models`` folder. With --synthetic, e5-sized (384) and USE-sized (512) files of clustered rows
(bench/vector_bench.py clustered_rows: a shared direction, topics, campaigns; 7 passages each)
are written to a temporary directory and mapped as a worker maps them. Every query is searched
every way back to back (order rotating), limit 100 as the search service asks: thread CPU time
per search, wall time, whether each screen returned the plain scan's ids, order and scores
(within 1e-6), and how much of each mapped file the process touched (resident pages).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Before NumPy loads OpenBLAS, or the setting is ignored: one BLAS thread, as a web worker.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from search import vector  # noqa: E402  # after the sys.path line above
from search.vector import VectorIndex  # noqa: E402

LIMIT = 100  # kb/searching/service.py CANDIDATES
MODES = ("int8", "float16", "plain")


def set_mode(mode: str) -> None:
    vector.SCREEN = mode != "plain"
    vector.INT8_SCREEN = mode == "int8"


def resident_mb(array: np.ndarray) -> float:
    """Return the resident MB of the mapping that holds ``array`` (from /proc/self/smaps)."""
    address = array.ctypes.data
    inside = False
    with open("/proc/self/smaps", encoding="utf-8") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low <= address < high
            elif inside and head == "Rss:":
                return int(line.split()[1]) / 1024
    return float("nan")


def open_mapped(prefix: Path, dim: int) -> VectorIndex:
    index = VectorIndex(prefix.name, dim)
    index.open_file(prefix)
    return index


def synthetic_files(folder: Path, rows: int) -> dict[str, tuple[Path, int, float, float]]:
    """Write a 384- and a 512-d file of ``rows`` rows; return (prefix, dim, save s, int8 s)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from vector_bench import clustered_rows

    made = {}
    for name, dim in (("e5", 384), ("use", 512)):
        rng = np.random.default_rng(dim)
        campaigns = rows // 7
        index = VectorIndex(name, dim)
        index.load(
            np.repeat(np.arange(1, campaigns + 1), 7), clustered_rows(rng, campaigns, 7, dim)
        )
        prefix = folder / name
        vector.SCREEN = False  # the float16 files alone first, then the int8 copy, timed apart
        started = time.perf_counter()
        index.save(prefix)
        saved = time.perf_counter() - started
        vector.SCREEN = True
        started = time.perf_counter()
        open_mapped(prefix, dim)  # derives the int8 copy, as the first process to map it would
        made[name] = (prefix, dim, saved, time.perf_counter() - started)
        del index
    return made


def query_sets(
    indexes: dict[str, VectorIndex], count: int, encode: Callable[[str, int], np.ndarray] | None
) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    sets: dict[str, dict[str, np.ndarray]] = {"rows + noise": {}}
    if encode is not None:
        sets["bench query texts"] = {name: encode(name, count) for name in indexes}
    for name, index in indexes.items():
        base = index._snapshot().base
        near = vector.widened(base[rng.integers(0, len(base), count)])
        noise = rng.standard_normal(near.shape).astype(np.float32) / np.sqrt(index.dim)
        sets["rows + noise"][name] = near + 0.3 * noise
    return sets


def compare(
    indexes: dict[str, dict[str, VectorIndex]], queries: dict[str, np.ndarray], rounds: int
) -> None:
    """Search every query every way; print CPU/wall per mode and model and same-result counts."""
    names = list(queries)
    count = len(next(iter(queries.values())))
    cpu: dict[tuple[str, str], list[float]] = {(n, m): [] for n in names for m in MODES}
    wall: dict[tuple[str, str], list[float]] = {(n, m): [] for n in names for m in MODES}
    same = dict.fromkeys(MODES[:-1], 0)
    total = 0
    for round_ in range(rounds):
        for i in range(count):
            for name in names:
                found = {}
                shift = (i + round_) % len(MODES)
                for mode in MODES[shift:] + MODES[:shift]:
                    set_mode(mode)
                    started, started_wall = time.thread_time(), time.perf_counter()
                    found[mode] = indexes[mode][name].search(queries[name][i], limit=LIMIT)
                    cpu[(name, mode)].append((time.thread_time() - started) * 1000)
                    wall[(name, mode)].append((time.perf_counter() - started_wall) * 1000)
                total += 1
                want = found["plain"]
                for mode in same:
                    got = found[mode]
                    same[mode] += [c for c, _ in got] == [c for c, _ in want] and all(
                        abs(x[1] - y[1]) < 1e-6 for x, y in zip(got, want, strict=True)
                    )
    print(
        f"  same top-{LIMIT} as the plain scan (ids, order, scores within 1e-6): "
        + ", ".join(f"{m} {same[m]}/{total}" for m in same)
    )
    print(
        f"  {'ms per search':18}" + "".join(f"{m + ' CPU p50':>17}{'wall p50':>10}" for m in MODES)
    )
    for name in [*names, "both models"]:
        parts = names if name == "both models" else [name]
        line = f"  {name:18}"
        for mode in MODES:
            c = np.sum([cpu[(n, mode)] for n in parts], axis=0)
            w = np.sum([wall[(n, mode)] for n in parts], axis=0)
            line += f"{np.median(c):17.1f}{np.median(w):10.1f}"
        c8, c16 = (np.median(np.sum([cpu[(n, m)] for n in parts], axis=0)) for m in MODES[:2])
        print(line + f"   float16 / int8 CPU {c16 / c8:.2f}×")


def main() -> None:
    """Print the three ways' times, identical-result counts and resident memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vectors_dir", type=Path, nargs="?")
    parser.add_argument("models_dir", type=Path, nargs="?")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--rows", type=int, default=674_892)  # per model at 100k campaigns
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    vector.limit_blas_threads()
    built: dict[str, tuple[Path, int, float, float]] = {}
    scratch = None
    encode = None
    if args.synthetic:
        scratch = tempfile.TemporaryDirectory(prefix="scan_screen-")
        built = synthetic_files(Path(scratch.name), args.rows)
        prefixes = {name: (prefix, dim) for name, (prefix, dim, _, _) in built.items()}
    else:
        if args.vectors_dir is None or args.models_dir is None:
            parser.error("VECTORS_DIR and MODELS_DIR, or --synthetic")
        prefixes = {}
        for name, dim in (("e5", 384), ("use", 512)):
            rows_file = next(args.vectors_dir.glob(f"{name}-*.rows.npy"))
            prefixes[name] = (rows_file.with_name(rows_file.name.removesuffix(".rows.npy")), dim)
        import torch

        from bench.search_bench import QUERIES
        from search.embedder import load_embedders

        torch.set_num_threads(1)  # as a web worker
        embedders = {e.name: e for e in load_embedders("e5,use", args.models_dir, num_threads=1)}
        texts = [q.text for q in QUERIES]
        args.queries = len(texts)

        def encode(name: str, count: int) -> np.ndarray:
            return embedders[name].encode_queries(texts[:count])

    # One mapping per mode, so each one's resident pages are its own.
    indexes = {m: {n: open_mapped(p, d) for n, (p, d) in prefixes.items()} for m in MODES}
    sample = indexes["int8"]
    print(
        f"scan_screen {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; rows "
        + ", ".join(f"{n} {len(i):,} × {i.dim}" for n, i in sample.items())
        + f"; {args.queries} queries × {args.rounds} rounds; limit {LIMIT}"
        + ("; synthetic clustered rows" if args.synthetic else "")
    )
    for name, (_, _, saved, derived) in built.items():
        print(
            f"  {name}: float16 file written in {saved:.1f} s, its int8 copy derived in {derived:.1f} s"
        )
    for label, queries in query_sets(sample, args.queries, encode).items():
        print(f"\n== {label}")
        compare(indexes, queries, args.rounds)
    print("\nresident MB of the mapped files, per mode's own mapping (after all its searches):")
    for name in prefixes:
        for mode in MODES:
            state = indexes[mode][name]._snapshot()
            int8 = "" if state.int8 is None else f", int8 copy {resident_mb(state.int8.rows):,.0f}"
            total = state.base.nbytes / 2**20
            print(
                f"  {name:4} {mode:8} float16 rows {resident_mb(state.base):,.0f} of {total:,.0f}"
                + (int8 if mode == "int8" else "")
            )
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()
