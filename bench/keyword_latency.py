"""CPU per keyword search, the current code against a reference commit's, interleaved in one run.

Run: .venv/bin/python bench/keyword_latency.py INDEX_DIR [--reference 67350ac] [--rounds 5]

INDEX_DIR is a keyword index directory (the one holding CURRENT), e.g. a copy of a kept
``bench/search_bench.py --keep`` data dir's ``index/keyword`` (copy it first: searching opens
the files only for reading, but a stale index would be rebuilt by the app). The reference
commit's ``search/postings.py`` and ``search/keyword/scoring.py`` are loaded from git as modules
of their own and swapped in for ``rank`` in the same KeywordIndex, so both paths search the
same open index with the same filters, snapshot and idf cache (the rest of the search:
analysis, filter masks, ids, paging, is the same code). Each query of bench/search_bench.py
(its text plus the concept cues the service appends; its filters) is searched, per round, as:
``reference`` (the searcher's idf cache as the earlier rounds left it: a repeated query),
``reference-cold`` (idf cache emptied first: terms this searcher has not seen), ``cold`` (this
code, postings and idf caches emptied first) and ``warm`` (this code, caches as the previous
search of the same query left them), in an order rotated per query. CPU is the thread's time. Every query's page of 100, total and facets are
compared between the reference and this code: ids, order, matched terms and totals equal,
scores within 1e-9.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.search_bench import QUERIES, Query  # noqa: E402
from search import concepts  # noqa: E402
from search.keyword import (  # noqa: E402
    KeywordIndex,
    KeywordResult,
    MetricRange,
    SearchFilters,
    storage,
)

LIMIT = 100


def load_reference(commit: str) -> Any:
    """Return the reference commit's ``rank``, its modules loaded from git under other names."""

    def source(path: str) -> str:
        return subprocess.run(  # noqa: S603  # git, on this repository, with the given commit
            ["git", "-C", str(ROOT), "show", f"{commit}:{path}"],  # noqa: S607
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    postings = types.ModuleType("reference_postings")
    exec(compile(source("search/postings.py"), "reference_postings", "exec"), postings.__dict__)  # noqa: S102
    sys.modules["reference_postings"] = postings
    code = source("search/keyword/scoring.py").replace(
        "from search.postings import", "from reference_postings import"
    )
    scoring = types.ModuleType("reference_scoring")
    sys.modules["reference_scoring"] = scoring  # dataclasses look their module up
    exec(compile(code, "reference_scoring", "exec"), scoring.__dict__)  # noqa: S102
    reference_rank = scoring.rank

    def rank(searcher: Any, terms: Any, lengths: Any, allowed: Any, cache: Any = None) -> Any:
        return reference_rank(searcher, terms, lengths, allowed)

    return rank


def filters_of(query: Query) -> SearchFilters:
    """Translate the bench query's API filters into SearchFilters (the ones the bench uses)."""
    values: dict[str, Any] = {}
    for key, value in query.filters.items():
        if key in ("industry", "goal_type", "status"):
            values[key] = value
        elif key == "channel":
            values["channel"] = (value,)
        elif key == "missed":
            values["missed"] = value == "true"
        elif key in ("date_from", "date_to"):
            values[key] = __import__("datetime").date.fromisoformat(value)
        elif key == "metric_range":  # "roi.actual<2"
            name, bound = value.split("<")
            metric, which = name.split(".")
            values["metrics"] = (MetricRange(metric, which, None, float(bound)),)  # type: ignore[arg-type]
        else:
            raise SystemExit(f"unknown bench filter {key}")
    return SearchFilters(**values)


def same(a: KeywordResult, b: KeywordResult) -> bool:
    """Return whether two results are the same: ids, order, terms, total, facets; scores 1e-9."""
    return (
        a.total == b.total
        and a.facets == b.facets
        and [(h.campaign_id, h.terms) for h in a.hits] == [(h.campaign_id, h.terms) for h in b.hits]
        and all(abs(x.score - y.score) <= 1e-9 for x, y in zip(a.hits, b.hits, strict=True))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index_dir", type=Path)
    parser.add_argument("--reference", default="67350ac")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    reference_rank = load_reference(args.reference)
    current_rank = storage.rank
    index = KeywordIndex(args.index_dir)
    if not index.is_usable or index.is_stale:
        raise SystemExit(f"no usable index under {args.index_dir}: {index.problem}")
    searches = []
    for query in QUERIES:
        cues = concepts.expand(query.text)
        words = f"{query.text} {' '.join(cues)}" if cues else query.text
        searches.append((words, filters_of(query)))

    def run(words: str, filters: SearchFilters, facets: bool = False) -> KeywordResult:
        return index.search(words, filters=filters, limit=LIMIT, facets=facets)

    # Warm-up (ids, lengths, filter masks, idf, OS cache) and the equality check.
    identical = 0
    for words, filters in searches:
        storage.rank = reference_rank  # type: ignore[assignment]
        before = run(words, filters, facets=True)
        storage.rank = current_rank
        index._segments.postings.clear()
        after = run(words, filters, facets=True)
        identical += same(before, after)
    modes = ("reference", "reference-cold", "cold", "warm")
    cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    load = [os.getloadavg()[0]]
    started = time.strftime("%H:%M:%S UTC", time.gmtime())
    for round_number in range(args.rounds):
        for n, (words, filters) in enumerate(searches):
            shift = (n + round_number) % len(modes)
            for mode in modes[shift:] + modes[:shift]:
                reference = mode.startswith("reference")
                storage.rank = reference_rank if reference else current_rank  # type: ignore[assignment]
                if mode.endswith("cold"):
                    index._current().searcher._idf_cache.clear()  # type: ignore[union-attr]
                if mode == "cold":
                    index._segments.postings.clear()
                elif mode == "warm":
                    run(words, filters)  # the cache as after this query's last search
                clock = time.thread_time()
                run(words, filters)
                cpu[mode].append((time.thread_time() - clock) * 1000)
        load.append(os.getloadavg()[0])
    storage.rank = current_rank

    print(
        f"keyword search CPU per query, ms ({started}, {len(searches)} queries x {args.rounds} "
        f"rounds, limit {LIMIT}, no facets; reference {args.reference})"
    )
    print(f"load average (1 min) per round: {' '.join(f'{x:.2f}' for x in load)}")
    print(f"{'':16} {'p50':>7} {'p95':>7} {'mean':>7}")
    for mode in modes:
        values = np.array(cpu[mode])
        p50, p95 = np.percentile(values, 50), np.percentile(values, 95)
        print(f"{mode:16} {p50:7.2f} {p95:7.2f} {values.mean():7.2f}")
    for before, after in (("reference-cold", "cold"), ("reference", "warm")):
        ref, values = np.array(cpu[before]), np.array(cpu[after])
        print(
            f"{before} / {after}: p50 {np.percentile(ref, 50) / np.percentile(values, 50):.2f}x, "
            f"p95 {np.percentile(ref, 95) / np.percentile(values, 95):.2f}x"
        )
    print(f"identical results (page of {LIMIT}, total, facets): {identical}/{len(searches)}")


if __name__ == "__main__":
    main()
