"""Evaluate the relevance floor: empty answers to out-of-scope queries, nDCG@10 kept in scope.

Usage: python bench/eval_outofscope.py [--data-dir DIR] [--models e5,use]
           [--outofscope FILE ...] [--inscope FILE ...] [--variants rule,learned,off,0.25:1.0]

Loads and indexes the demo data with the real models (bench/eval_search.py's make_app), then,
for each in-scope decision given (``learned``: the fitted model, search/data/floor_model.json;
``rule``: the hand-set rule with search/relevance.py's CONTRAST_MARGIN and CONTRAST_CLEAR; ``off``:
the rule without the contrast test; ``M:C``: the rule with those two set to M and C), in one run:
(a) for each out-of-scope set, the share of queries answered with no result (total 0) per mode,
with the floor on;
(b) for each labelled in-scope set, nDCG@10 in semantic and hybrid mode with the floor off and
on, the mean total per query, and the queries the floor emptied.
By default every set in bench/data: they have all been seen while changing the floor, so every
figure is a dev figure.
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

from bench.eval_search import K, make_app, ndcg  # noqa: E402  # after the path setup

DATA = ROOT / "bench" / "data"
OUTOFSCOPE = sorted(DATA.glob("search_outofscope*.json"))
INSCOPE = [DATA / "search_devset.json", *sorted(DATA.glob("search_heldout*.json"))]
MODES = ("hybrid", "semantic", "keyword")


def _queries(path: Path) -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["queries"]
    return queries


def _run(app: Any, item: dict[str, Any], mode: str) -> tuple[list[str], int]:
    """Return the first page's campaign ids and the total of one query."""
    from kb.searching import service as search_service
    from kb.searching.schemas import validate_search_query

    args = {"q": item["query"], "mode": mode, "limit": K, **item.get("filters", {})}
    with app.app_context():
        response = search_service.search(validate_search_query(args))
    return [r.campaign.external_id or "" for r in response.results], response.total


def empty_share(
    app: Any, queries: list[dict[str, Any]], mode: str
) -> tuple[float, float, list[str]]:
    """Return the share of queries with no result, the mean total, and the ones answered."""
    totals, answered = [], []
    for item in queries:
        _, total = _run(app, item, mode)
        totals.append(total)
        if total:
            answered.append(f"{item['query']} ({total})")
    empty = sum(1 for t in totals if t == 0) / len(totals)
    return empty, statistics.fmean(totals), answered


def inscope(
    app: Any, queries: list[dict[str, Any]], mode: str, *, floor_on: bool
) -> tuple[float, float, list[str]]:
    """Return nDCG@10, the mean total of queries with words, and the queries left empty."""
    from kb.searching import service as search_service

    search_service.RELEVANCE_FLOOR = floor_on
    try:
        gains, totals, emptied = [], [], []
        for item in queries:
            ranked, total = _run(app, item, mode)
            gains.append(ndcg(ranked, item["relevant"]))
            if item["query"]:
                totals.append(total)
                if not total:
                    emptied.append(item["query"])
    finally:
        search_service.RELEVANCE_FLOOR = True
    return statistics.fmean(gains), statistics.fmean(totals), emptied


# (CONTRAST_MARGIN, CONTRAST_CLEAR) of the rule; None: the rule without the contrast test;
# "learned": the fitted decision (search/data/floor_model.json), the rule where it has no fit.
Variant = tuple[float, float] | None | str


def _set(variant: Variant, shipped: tuple[float, float]) -> None:
    from search import relevance

    relevance.LEARNED = variant == "learned"
    rule = shipped if isinstance(variant, str) else variant
    relevance.CONTRAST_TEST = rule is not None
    if rule is not None:
        relevance.CONTRAST_MARGIN, relevance.CONTRAST_CLEAR = rule


def _label(variant: Variant) -> str:
    if variant == "learned":
        return "learned decision"
    if variant is None:
        return "rule, contrast off"
    if isinstance(variant, str):
        return variant
    return f"rule, contrast {variant[0]:g} / {variant[1]:g}"


def _variant(text: str, shipped: tuple[float, float]) -> Variant:
    if text == "off":
        return None
    if text in ("shipped", "rule"):
        return shipped
    if text == "learned":
        return "learned"
    margin, clear = text.split(":")
    return float(margin), float(clear)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", default="e5,use")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--outofscope", type=Path, nargs="*", default=OUTOFSCOPE)
    parser.add_argument("--inscope", type=Path, nargs="*", default=INSCOPE)
    parser.add_argument(
        "--variants",
        default="rule,learned",
        help="decisions to compare, comma-separated: 'learned' (the fitted model of "
        "search/data/floor_model.json), 'rule' (the hand-set rule with search/relevance.py's "
        "contrast values), 'off' (the rule without the contrast test), or MARGIN:CLEAR (the rule "
        "with those contrast values)",
    )
    options = parser.parse_args()
    from search import relevance

    shipped = relevance.CONTRAST_MARGIN, relevance.CONTRAST_CLEAR
    variants = [_variant(v, shipped) for v in options.variants.split(",")]
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
    label = {v: _label(v) for v in variants}

    print("\n(a) out-of-scope queries answered with no result (floor on)")
    for path in options.outofscope:
        queries = _queries(path)
        print(f"{path.name}: {len(queries)} queries")
        for variant in variants:
            _set(variant, shipped)
            print(f"  {label[variant]}")
            for mode in MODES:
                empty, total, answered = empty_share(app, queries, mode)
                print(f"    {mode:<9} empty {empty:6.1%}  mean total {total:5.1f}", flush=True)
                if mode != "keyword" and answered:
                    print(f"              answered: {'; '.join(answered)}")

    print("\n(b) in-scope nDCG@10, floor off -> on; mean total (of 55); queries the floor emptied")
    for path in options.inscope:
        queries = _queries(path)
        print(f"{path.name}: {len(queries)} queries")
        for mode in ("semantic", "hybrid"):
            off, off_total, _ = inscope(app, queries, mode, floor_on=False)
            for variant in variants:
                _set(variant, shipped)
                on, on_total, emptied = inscope(app, queries, mode, floor_on=True)
                print(
                    f"  {mode:<9} {label[variant]:<30} nDCG@10 {off:.3f} -> {on:.3f} "
                    f"(change {on - off:+.3f}); mean total {off_total:4.1f} -> {on_total:4.1f}; "
                    f"emptied {len(emptied)}",
                    flush=True,
                )
                if emptied:
                    print(f"              emptied: {'; '.join(emptied)}")
    _set("learned", shipped)


if __name__ == "__main__":
    main()
