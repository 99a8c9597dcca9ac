"""Evaluate search quality on the labelled dev set: nDCG@10, Recall@10 and MRR per query type.

Usage: python bench/eval_search.py [--data-dir DIR] [--models e5,use] [--modes keyword,semantic,hybrid]

Loads the demo campaigns into a database under DIR (kept between runs, so embeddings are computed
once), indexes them with the real models, runs every dev-set query in each mode and prints one
table per mode. Relevance grades: 2 = answers the query, 1 = partly useful.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEVSET = ROOT / "bench" / "data" / "search_devset.json"
K = 10


def ndcg(ranked: list[str], relevant: dict[str, int], k: int = K) -> float:
    """Return nDCG@k with gains 2^grade - 1."""
    dcg = sum(
        (2 ** relevant.get(doc, 0) - 1) / math.log2(i + 2) for i, doc in enumerate(ranked[:k])
    )
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2**grade - 1) / math.log2(i + 2) for i, grade in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall(ranked: list[str], relevant: dict[str, int], k: int = K) -> float:
    """Return the share of relevant documents in the top k."""
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr(ranked: list[str], relevant: dict[str, int]) -> float:
    """Return 1/rank of the first relevant document."""
    return next((1 / (i + 1) for i, doc in enumerate(ranked) if doc in relevant), 0.0)


def evaluate(app: Any, queries: list[dict[str, Any]], mode: str) -> dict[str, dict[str, float]]:
    """Run the queries in one mode; return mean metrics per query type and overall."""
    from kb.searching import service as search_service
    from kb.searching.schemas import validate_search_query

    per_type: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    with app.app_context():
        for item in queries:
            args = {"q": item["query"], "mode": mode, "limit": K, **item.get("filters", {})}
            response = search_service.search(validate_search_query(args))
            ranked = [r.campaign.external_id or "" for r in response.results]
            scores = (
                ndcg(ranked, item["relevant"]),
                recall(ranked, item["relevant"]),
                mrr(ranked, item["relevant"]),
            )
            per_type[item["type"]].append(scores)
            per_type["overall"].append(scores)
    return {
        kind: dict(
            zip(
                ("ndcg", "recall", "mrr"),
                map(statistics.fmean, zip(*rows, strict=True)),
                strict=True,
            )
        )
        for kind, rows in per_type.items()
    }


def make_app(data_dir: Path, models: str, *, models_dir: Path | None = None) -> Any:
    """Create an app on ``data_dir`` with the demo data loaded and indexed."""
    from kb import create_app
    from kb.demo import load_demo
    from kb.searching import indexer

    config = {"DATA_DIR": str(data_dir), "EMBEDDING_MODELS": models, "INDEX_SYNC": True}
    if models_dir is not None:
        config["MODELS_DIR"] = str(models_dir)
    app = create_app(config)
    with app.app_context():
        load_demo()
        indexer.reconcile()
        indexer.drain()
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", default="e5,use")
    parser.add_argument("--modes", default="keyword,semantic,hybrid")
    parser.add_argument(
        "--queries", type=Path, default=DEVSET, help="labelled queries (default: the dev set)"
    )
    parser.add_argument(
        "--no-concepts", action="store_true", help="without the concept cues (search/concepts.py)"
    )
    options = parser.parse_args()
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-eval-"))
    queries = json.loads(options.queries.read_text(encoding="utf-8"))["queries"]
    if options.no_concepts:
        from kb.searching import service as search_service

        search_service.EXPAND_CONCEPTS = False
    app = make_app(data_dir, options.models)
    concepts = "off" if options.no_concepts else "on"
    print(
        f"{options.queries.name}: {len(queries)} queries; models: {options.models}; "
        f"concept cues: {concepts}; data: {data_dir}"
    )
    results = {mode: evaluate(app, queries, mode) for mode in options.modes.split(",")}
    kinds = [
        *sorted({kind for table in results.values() for kind in table} - {"overall"}),
        "overall",
    ]
    counts: defaultdict[str, int] = defaultdict(int)
    for item in queries:
        counts[item["type"]] += 1
    counts["overall"] = len(queries)
    for metric in ("ndcg", "recall", "mrr"):
        label = {"ndcg": "nDCG@10", "recall": "Recall@10", "mrr": "MRR"}[metric]
        print(f"\n{label:<14}" + "".join(f"{mode:>10}" for mode in results))
        for kind in kinds:
            row = "".join(
                f"{results[mode].get(kind, {}).get(metric, float('nan')):>10.3f}"
                for mode in results
            )
            print(f"{kind + f' ({counts[kind]})':<14}{row}")


if __name__ == "__main__":
    main()
