"""Measure search on every labelled set in bench/data at once: nDCG@10 per set, mode and type.

Usage: python bench/eval_devsets.py [--data-dir DIR] [--models e5,use] [--json OUT]

One app (demo data, real models; bench/eval_search.py's make_app) serves every set:
in-scope sets (search_devset.json, search_heldout*.json): nDCG@10 per query type and overall in
keyword, semantic and hybrid mode with the relevance floor on, and hybrid/semantic with it off;
out-of-scope sets (search_outofscope*.json): the share of queries answered with no result per
mode. All of these sets have been seen by now: they are dev sets, not blind ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_search import K, make_app, ndcg  # noqa: E402  # after the path setup

DATA = ROOT / "bench" / "data"
MODES = ("keyword", "semantic", "hybrid")


def _run(app: Any, item: dict[str, Any], mode: str) -> tuple[list[str], int]:
    from kb.searching import service as search_service
    from kb.searching.schemas import validate_search_query

    args = {"q": item["query"], "mode": mode, "limit": K, **item.get("filters", {})}
    with app.app_context():
        response = search_service.search(validate_search_query(args))
    return [r.campaign.external_id or "" for r in response.results], response.total


def inscope(app: Any, queries: list[dict[str, Any]]) -> dict[str, Any]:
    """Return nDCG@10 per mode (and floor off) per type, and per query."""
    from kb.searching import service as search_service

    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    per_query: dict[str, dict[str, float]] = defaultdict(dict)
    totals: dict[str, list[int]] = defaultdict(list)
    for column, mode, floor_on in (
        *((m, m, True) for m in MODES),
        ("semantic-nofloor", "semantic", False),
        ("hybrid-nofloor", "hybrid", False),
    ):
        search_service.RELEVANCE_FLOOR = floor_on
        try:
            for item in queries:
                ranked, total = _run(app, item, mode)
                totals[column].append(total)
                value = ndcg(ranked, item["relevant"])
                kind = item.get("type", "?")
                table[column][kind].append(value)
                table[column]["overall"].append(value)
                per_query[item["id"]][column] = value
        finally:
            search_service.RELEVANCE_FLOOR = True
    means = {
        column: {kind: statistics.fmean(v) for kind, v in kinds.items()}
        for column, kinds in table.items()
    }
    counts: dict[str, int] = defaultdict(int)
    for item in queries:
        counts[item.get("type", "?")] += 1
    counts["overall"] = len(queries)
    mean_totals = {column: statistics.fmean(values) for column, values in totals.items()}
    return {"means": means, "counts": dict(counts), "per_query": per_query, "totals": mean_totals}


def outofscope(app: Any, queries: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the share of empty answers per mode and the queries answered."""
    figures: dict[str, Any] = {}
    for mode in MODES:
        answered = []
        for item in queries:
            _, total = _run(app, item, mode)
            if total:
                answered.append(f"{item['query']} ({total})")
        figures[mode] = {"empty": 1 - len(answered) / len(queries), "answered": answered}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", default="e5,use")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    options = parser.parse_args()
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-eval-"))
    app = make_app(data_dir, options.models)
    report: dict[str, Any] = {}
    for path in sorted(DATA.glob("search_*.json")):
        queries = json.loads(path.read_text(encoding="utf-8"))["queries"]
        if "outofscope" in path.name:
            result = outofscope(app, queries)
            report[path.name] = result
            print(f"\n{path.name}: {len(queries)} out-of-scope queries, share answered empty")
            for mode in MODES:
                print(f"  {mode:<9} {result[mode]['empty']:6.1%}")
                for line in result[mode]["answered"]:
                    print(f"      answered: {line}")
        else:
            result = inscope(app, queries)
            report[path.name] = result
            columns = list(result["means"])
            print(f"\n{path.name}: {len(queries)} queries, nDCG@10")
            print(f"  {'type':<26}" + "".join(f"{c:>17}" for c in columns))
            kinds = [*sorted(k for k in result["counts"] if k != "overall"), "overall"]
            for kind in kinds:
                label = f"{kind} ({result['counts'][kind]})"
                print(
                    f"  {label:<26}"
                    + "".join(
                        f"{result['means'][c].get(kind, float('nan')):>17.3f}" for c in columns
                    )
                )
            print(
                f"  {'mean total (results)':<26}"
                + "".join(f"{result['totals'][c]:>17.1f}" for c in columns)
            )
        sys.stdout.flush()
    if options.json:
        options.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
