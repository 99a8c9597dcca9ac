"""Evaluate drafting on the labelled drafts: similar-case nDCG@10, collision precision/recall.

Usage: python bench/eval_drafts.py [--data-dir DIR] [--models e5,use] [--drafts FILE]

Loads and indexes the demo campaigns (as bench/eval_search.py does), sends every labelled draft
through the same service as ``POST /api/v1/similar`` and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_search import make_app, mrr, ndcg, recall  # noqa: E402  # after the path set-up

DEVSET = ROOT / "bench" / "data" / "drafts_devset.json"


def evaluate(app: Any, devset: dict[str, Any]) -> dict[str, float]:
    """Return mean similar-case metrics and micro collision precision/recall."""
    from kb.campaigns.schemas import validate_draft
    from kb.drafts import analysis as drafting
    from kb.extensions import db
    from kb.models import Campaign

    figures: dict[str, list[float]] = {"ndcg": [], "recall": [], "mrr": []}
    found = expected = correct = 0
    stack_found = stack_expected = stack_correct = 0
    with app.app_context():
        external = dict(db.session.execute(db.select(Campaign.id, Campaign.external_id)).all())
        for item in devset["drafts"]:
            analysis = drafting.analyze_draft(validate_draft({**item["draft"], "limit": 10}))
            ranked = [external[case.campaign.id] for case in analysis.similar]
            figures["ndcg"].append(ndcg(ranked, item["relevant"]))
            figures["recall"].append(recall(ranked, item["relevant"]))
            figures["mrr"].append(mrr(ranked, item["relevant"]))
        for case in devset["collision_cases"]:
            analysis = drafting.analyze_draft(validate_draft({**case["draft"], "limit": 3}))
            predicted = {external[c.id] for c in analysis.conflicts}
            truth = set(case["collides_with"])
            found, expected = found + len(predicted), expected + len(truth)
            correct += len(predicted & truth)
            stacking = {external[c.id] for c in analysis.conflicts if c.stacking_risk}
            stack_truth = set(case.get("stacking_risk_with", []))
            stack_found, stack_expected = (
                stack_found + len(stacking),
                stack_expected + len(stack_truth),
            )
            stack_correct += len(stacking & stack_truth)
            if predicted != truth:
                print(
                    f"  collision case {case['id']}: expected {sorted(truth)}, got {sorted(predicted)}"
                )
    return {
        **{name: statistics.fmean(values) for name, values in figures.items()},
        "collision_precision": correct / found if found else 1.0,
        "collision_recall": correct / expected if expected else 1.0,
        "stacking_precision": stack_correct / stack_found if stack_found else 1.0,
        "stacking_recall": stack_correct / stack_expected if stack_expected else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", default="e5,use")
    parser.add_argument(
        "--drafts", type=Path, default=DEVSET, help="labelled drafts (default: the dev set)"
    )
    options = parser.parse_args()
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-eval-"))
    devset = json.loads(options.drafts.read_text(encoding="utf-8"))
    app = make_app(data_dir, options.models)
    figures = evaluate(app, devset)
    print(f"drafts: {len(devset['drafts'])}; collision cases: {len(devset['collision_cases'])}")
    print(
        f"similar cases  nDCG@10 {figures['ndcg']:.3f}  Recall@10 {figures['recall']:.3f}  MRR {figures['mrr']:.3f}"
    )
    print(
        f"collisions     precision {figures['collision_precision']:.3f}  recall {figures['collision_recall']:.3f}"
    )
    print(
        f"stacking risk  precision {figures['stacking_precision']:.3f}  recall {figures['stacking_recall']:.3f}"
    )


if __name__ == "__main__":
    main()
