"""The vector scan three ways: screened on the int8 copy, screened on float16 rows, plain exact.

Run on a bench's files:
    .venv/bin/python bench/scan_screen.py VECTORS_DIR MODELS_DIR [--rounds 3]
or on synthetic rows the size of 100k campaigns (no models needed):
    TMPDIR=... .venv/bin/python bench/scan_screen.py --synthetic [--rows 674892] [--rounds 3]
With --before COMMIT, that commit's search/vector.py searches the same files too ("before").

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
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Before NumPy loads OpenBLAS, or the setting is ignored: one BLAS thread, as a web worker.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from search import vector  # noqa: E402  # after the sys.path line above
from search.vector import VectorIndex  # noqa: E402

LIMIT = 100  # kb/searching/service.py CANDIDATES
MODES: tuple[str, ...] = ("int8", "float16", "plain")  # "before" is added by --before


def set_mode(mode: str) -> None:
    vector.SCREEN = mode != "plain"
    vector.INT8_SCREEN = mode == "int8"


def vector_module_at(commit: str, folder: Path) -> Any:
    """Import search/vector.py as it was at ``commit`` (it maps the same files)."""
    source = subprocess.run(  # noqa: S603  # git, on this repository, with the given commit
        ["git", "-C", str(ROOT), "show", f"{commit}:search/vector.py"],  # noqa: S607
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = folder / "vector_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("vector_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vector_before"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


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


def open_mapped(prefix: Path, dim: int, module: Any = vector) -> VectorIndex:
    index: VectorIndex = module.VectorIndex(prefix.name, dim)
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
    same = dict.fromkeys([m for m in MODES if m != "plain"], 0)
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
        p50 = {m: np.median(np.sum([cpu[(n, m)] for n in parts], axis=0)) for m in MODES}
        ratios = [f"{m} / int8 CPU {p50[m] / p50['int8']:.2f}×" for m in MODES if m != "int8"]
        print(line + "   " + ", ".join(ratios))


def main() -> None:
    """Print the three ways' times, identical-result counts and resident memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vectors_dir", type=Path, nargs="?")
    parser.add_argument("models_dir", type=Path, nargs="?")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--rows", type=int, default=674_892)  # per model at 100k campaigns
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", metavar="COMMIT", help="also search with this commit's code")
    args = parser.parse_args()
    global MODES
    vector.limit_blas_threads()
    import torch  # widens the rows scored exactly

    torch.set_num_threads(1)  # as a web worker (two threads on a busy box: 10-40x slower)
    vector.INT8_MIN_ROWS = 0  # whatever the size: the point is to compare
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
        from bench.search_bench import QUERIES
        from search.embedder import load_embedders

        embedders = {e.name: e for e in load_embedders("e5,use", args.models_dir, num_threads=1)}
        texts = [q.text for q in QUERIES]
        args.queries = len(texts)

        def encode(name: str, count: int) -> np.ndarray:
            return embedders[name].encode_queries(texts[:count])

    # One mapping per mode, so each one's resident pages are its own.
    modules = dict.fromkeys(MODES, vector)
    if args.before:
        before_dir = tempfile.TemporaryDirectory(prefix="scan_screen-code-")
        modules["before"] = vector_module_at(args.before, Path(before_dir.name))
        modules["before"].limit_blas_threads()
        MODES = ("int8", "float16", "before", "plain")
    indexes = {
        m: {n: open_mapped(p, d, modules[m]) for n, (p, d) in prefixes.items()} for m in MODES
    }
    sample = indexes["int8"]
    print(
        f"scan_screen {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; rows "
        + ", ".join(f"{n} {len(i):,} × {i.dim}" for n, i in sample.items())
        + f"; {args.queries} queries × {args.rounds} rounds; limit {LIMIT}"
        + ("; synthetic clustered rows" if args.synthetic else "")
        + (f"; before = search/vector.py at {args.before}" if args.before else "")
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
            copy = getattr(state, "int8", None)
            int8 = "" if copy is None else f", int8 copy {resident_mb(copy.rows):,.0f}"
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
