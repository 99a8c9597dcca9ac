"""Where a search's milliseconds go: wall and CPU time per stage, in one process.

Run: .venv/bin/python bench/search_stages.py DATA_DIR MODELS_DIR [--modes keyword,hybrid]
     [--rounds 2]

DATA_DIR is a data directory kept by ``bench/search_bench.py --keep`` (copy it out of the bench's
temporary folder first); MODELS_DIR its ``models`` folder. Every query of the bench goes through
the Flask test client (no HTTP; query cache off, one torch thread), each stage wrapped in a timer
that adds up its wall time and the CPU time of the thread that ran it. After each search the
query embedding alone is timed in the same thread, so every ratio compares figures taken side by
side. "CPU ms (all threads)" is the process's CPU time over the search: on a saturated machine
(load average above the core count) wall times follow it, whatever runs concurrently.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import search.embedder  # noqa: E402  # after the sys.path line above
from bench.search_bench import MODELS, QUERIES, search_path  # noqa: E402
from kb import create_app  # noqa: E402
from kb.accounts import services as accounts  # noqa: E402
from kb.searching import explain, floor, indexer, service  # noqa: E402
from search import concepts, relevance  # noqa: E402
from search.keyword.storage import KeywordIndex  # noqa: E402
from search.vector import VectorIndex  # noqa: E402

# Stage -> milliseconds of the current search (wall, and "[cpu]" for the thread's CPU time).
_spent: dict[str, float] = defaultdict(float)
_spent_lock = threading.Lock()


def timed(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` by a wrapper that adds its wall and thread CPU time to ``label``."""
    function: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            with _spent_lock:
                _spent[label] += (time.perf_counter() - wall) * 1000
                _spent[label + " [cpu]"] += (time.thread_time() - cpu) * 1000

    setattr(owner, name, wrapper)


STAGES = [
    (KeywordIndex, "search", "keyword search"),
    (KeywordIndex, "matching_ids", "keyword filter ids"),
    (KeywordIndex, "facet_counts", "facets"),
    (VectorIndex, "search", "vector scan (all models)"),
    (service._SemanticBranch, "result", "join of the model tasks"),
    (service, "_hydrate", "hydration"),
    (service, "_apply_outcome", "outcome lift"),
    (service, "_fuse", "fusion"),
    (service, "parse_outcome", "outcome parse"),
    (concepts, "expand", "concept cues"),
    (floor, "calibration", "floor calibration"),
    (floor, "model_scores", "floor evidence"),
    (relevance, "judge", "floor judgement"),
    (explain, "reasons", "reasons"),
    (explain, "snippet", "snippets"),
    (explain, "highlighted_title", "title highlight"),
    (indexer.SearchIndexes, "sync_vectors", "sync_vectors (DB)"),
    (service, "response_out", "serialisation"),
]


def settle(timeout_s: float = 900) -> float:
    """Wait until this process uses < 5 % of a core over 2 s (its background threads idle)."""
    started = time.monotonic()
    before = time.process_time()
    while time.monotonic() - started < timeout_s:
        time.sleep(2)
        now = time.process_time()
        if now - before < 0.1:
            return time.monotonic() - started
        before = now
    raise TimeoutError("the background indexer did not settle")


def main() -> None:
    """Time every stage of the bench's queries and print a table per mode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("models_dir")
    parser.add_argument("--modes", default="keyword,hybrid")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # as a web worker (KB_TORCH_THREADS=1)
    search.embedder.QUERY_CACHE_SIZE = 0  # time encodings, not cache hits
    for owner, name, label in STAGES:
        timed(owner, name, label)
    app = create_app(
        {
            "DATA_DIR": args.data_dir,
            "MODELS_DIR": args.models_dir,
            "EMBEDDING_MODELS": MODELS,
            "INDEX_SYNC": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        token = accounts.create_token("search-stages", "viewer").secret
        embedders = indexer.get_indexes().embedders
    for embedder in embedders:
        timed(embedder, "encode_queries", f"encode {embedder.name}")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def run(text: str, mode: str, filters: dict[str, str]) -> dict[str, Any]:
        response = client.get(search_path(text, mode, filters), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{mode} {text!r}: HTTP {response.status_code}")
        body: dict[str, Any] = response.get_json()
        return body

    for query in QUERIES[:6]:  # warm-up: models, dictionaries, the floor's calibration
        for mode in ("keyword", "semantic", "hybrid"):
            run(query.text, mode, query.filters)
    # The app's background indexer makes its first pass (reconcile, drain, warm-up) now: at 10k
    # campaigns it uses more CPU than the searches, which "CPU of all threads" would count.
    # Wait until the process idles, as bench/search_bench.py waits for its server.
    settled_s = settle()
    # As a server's worker does after its first pass (kb/searching/worker.py): the models' and
    # dictionaries' objects leave the collector's sight, or full collections land in the timings.
    gc.collect()
    gc.freeze()
    print(
        f"search_stages {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; "
        f"{os.cpu_count()} CPUs; {len(QUERIES)} queries × {args.rounds} rounds per mode; "
        f"background indexer idle after {settled_s:.0f} s; collector frozen after warm-up"
    )
    for mode in args.modes.split(","):
        rows: dict[str, list[float]] = defaultdict(list)
        loads = [os.getloadavg()[0]]
        for _ in range(args.rounds):
            for query in QUERIES:
                _spent.clear()
                cpu, wall = time.process_time(), time.perf_counter()
                body = run(query.text, mode, query.filters)
                rows["search, wall (test client)"].append((time.perf_counter() - wall) * 1000)
                rows["search, CPU of all threads"].append((time.process_time() - cpu) * 1000)
                rows["took_ms (server)"].append(float(body["took_ms"]))
                for label, ms in list(_spent.items()):
                    rows[label].append(ms)
                cpu, wall = time.process_time(), time.perf_counter()
                for embedder in embedders:
                    embedder.encode_queries([query.text])
                rows["embedding alone, wall"].append((time.perf_counter() - wall) * 1000)
                rows["embedding alone, CPU"].append((time.process_time() - cpu) * 1000)
        loads.append(os.getloadavg()[0])
        n = len(rows["search, wall (test client)"])
        print(f"\n== {mode}: {n} searches; load average {loads[0]:.2f} -> {loads[1]:.2f}")
        print(f"  {'stage (ms)':34}{'p50':>8}{'p95':>8}{'mean':>8}")
        for label, values in sorted(rows.items(), key=lambda item: -sum(item[1])):
            padded = values + [0.0] * (n - len(values))  # a stage a search did not reach
            print(
                f"  {label:34}{np.percentile(padded, 50):8.1f}{np.percentile(padded, 95):8.1f}"
                f"{np.mean(padded):8.1f}"
            )
        for what in ("wall", "CPU"):
            search_ms = rows[
                "search, wall (test client)" if what == "wall" else "search, CPU of all threads"
            ]
            embed_ms = rows[f"embedding alone, {what}"]
            print(
                f"  search / embedding alone, {what}: p50 "
                f"{np.percentile(search_ms, 50) / np.percentile(embed_ms, 50):.2f}×, p95 "
                f"{np.percentile(search_ms, 95) / np.percentile(embed_ms, 95):.2f}×"
            )


if __name__ == "__main__":
    main()
