"""Evaluate the relevance floor: empty answers to out-of-scope queries, nDCG@10 kept in scope.

Usage: python bench/eval_outofscope.py [--data-dir DIR] [--models e5,use]
           [--outofscope FILE ...] [--inscope FILE ...] [--tune]

Loads and indexes the demo data with the real models (bench/eval_search.py's make_app), then
(a) for each out-of-scope set, the share of queries answered with no result (total 0) per mode,
with the floor on; (b) for each labelled in-scope set, nDCG@10 in semantic and hybrid mode with
the floor on and off (kb.searching.service.RELEVANCE_FLOOR), and the mean total per query.
With --tune, first a grid of the floor's quantiles on the DEV sets only (the synthetic
out-of-scope dev set and search_devset.json): how the shipped values were chosen.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_search import evaluate, make_app  # noqa: E402  # after the path setup

DATA = ROOT / "bench" / "data"
OUTOFSCOPE_DEV = DATA / "search_outofscope_dev.json"
INSCOPE = [
    DATA / "search_devset.json",
    DATA / "search_heldout2.json",
    DATA / "search_heldout3.json",
]
MODES = ("hybrid", "semantic", "keyword")


def _queries(path: Path) -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["queries"]
    return queries


def empty_share(
    app: Any, queries: list[dict[str, Any]], mode: str
) -> tuple[float, float, list[str]]:
    """Return the share of queries with no result, the mean total, and the ones answered."""
    from kb.searching import service as search_service
    from kb.searching.schemas import validate_search_query

    totals, answered = [], []
    with app.app_context():
        for item in queries:
            args = {"q": item["query"], "mode": mode, "limit": 10, **item.get("filters", {})}
            response = search_service.search(validate_search_query(args))
            totals.append(response.total)
            if response.total:
                answered.append(f"{item['query']} ({response.total})")
    empty = sum(1 for t in totals if t == 0) / len(totals)
    return empty, statistics.fmean(totals), answered


def mean_total(app: Any, queries: list[dict[str, Any]], mode: str) -> float:
    """Return the mean ``total`` over queries that have words."""
    from kb.searching import service as search_service
    from kb.searching.schemas import validate_search_query

    totals = []
    with app.app_context():
        for item in queries:
            if not item["query"]:
                continue
            args = {"q": item["query"], "mode": mode, "limit": 10, **item.get("filters", {})}
            totals.append(search_service.search(validate_search_query(args)).total)
    return statistics.fmean(totals)


def ndcg_change(app: Any, queries: list[dict[str, Any]], mode: str) -> tuple[float, float]:
    """Return nDCG@10 without and with the floor."""
    from kb.searching import service as search_service

    figures = []
    for on in (False, True):
        search_service.RELEVANCE_FLOOR = on
        figures.append(evaluate(app, queries, mode)["overall"]["ndcg"])
    search_service.RELEVANCE_FLOOR = True
    return figures[0], figures[1]


def tune(app: Any, outofscope: list[dict[str, Any]], inscope: list[dict[str, Any]]) -> None:
    """Print the dev-set trade-off for a grid of the floor's quantiles."""
    from kb.searching import floor
    from kb.searching import service as search_service
    from kb.searching.indexer import get_indexes
    from search import relevance

    shipped = relevance.QUERY_QUANTILE, relevance.DOC_QUANTILE
    search_service.RELEVANCE_FLOOR = False
    without = {
        mode: evaluate(app, inscope, mode)["overall"]["ndcg"] for mode in ("semantic", "hybrid")
    }
    search_service.RELEVANCE_FLOOR = True
    print("tuning grid (dev sets only): query quantile, doc quantile -> out-of-scope dev empty,")
    print("devset nDCG@10 change against no floor, mean total; semantic | hybrid")
    for query_q in (0.9, 0.95, 1.0):
        for doc_q in (0.5, 0.75):
            relevance.QUERY_QUANTILE, relevance.DOC_QUANTILE = query_q, doc_q
            with app.app_context():
                floor.recalibrate(get_indexes())
            row = []
            for mode in ("semantic", "hybrid"):
                empty, _, _ = empty_share(app, outofscope, mode)
                change = evaluate(app, inscope, mode)["overall"]["ndcg"] - without[mode]
                total = mean_total(app, inscope, mode)
                row.append(f"empty {empty:6.1%} nDCG {change:+.3f} total {total:4.1f}")
            print(f"  {query_q:.2f} {doc_q:.2f}  " + " | ".join(row), flush=True)
    relevance.QUERY_QUANTILE, relevance.DOC_QUANTILE = shipped
    with app.app_context():
        floor.recalibrate(get_indexes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", default="e5,use")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--outofscope", type=Path, nargs="+", default=[OUTOFSCOPE_DEV])
    parser.add_argument("--inscope", type=Path, nargs="*", default=INSCOPE)
    parser.add_argument("--tune", action="store_true", help="grid of quantiles on the dev sets")
    options = parser.parse_args()
    from kb.searching import service as search_service

    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-eval-"))
    app = make_app(data_dir, options.models, models_dir=options.models_dir)
    print(f"models: {options.models}; python {platform.python_version()}; data: {data_dir}")
    with app.app_context():
        from kb.searching import floor
        from kb.searching.indexer import get_indexes

        indexes = get_indexes()
        indexes.sync_vectors()
        calibration = floor.calibration(indexes)
    print(f"calibration: {calibration}")
    if options.tune:
        tune(app, _queries(OUTOFSCOPE_DEV), _queries(INSCOPE[0]))

    print("\n(a) out-of-scope queries answered with no result (floor on)")
    for path in options.outofscope:
        queries = _queries(path)
        print(f"{path.name}: {len(queries)} queries")
        for mode in MODES:
            empty, total, answered = empty_share(app, queries, mode)
            print(f"  {mode:<9} empty {empty:6.1%}  mean total {total:5.1f}")
            if mode != "keyword" and answered:
                print(f"            answered: {'; '.join(answered)}")

    print("\n(b) in-scope nDCG@10 and mean total, floor off -> on")
    for path in options.inscope:
        queries = _queries(path)
        print(f"{path.name}: {len(queries)} queries")
        for mode in ("semantic", "hybrid"):
            off, on_ = ndcg_change(app, queries, mode)
            search_service.RELEVANCE_FLOOR = False
            off_total = mean_total(app, queries, mode)
            search_service.RELEVANCE_FLOOR = True
            on_total = mean_total(app, queries, mode)
            print(
                f"  {mode:<9} nDCG@10 {off:.3f} -> {on_:.3f} (change {on_ - off:+.3f}); "
                f"mean total {off_total:5.1f} -> {on_total:5.1f}"
            )


if __name__ == "__main__":
    main()
