"""Fit the learned fusion (search/hybrid.py): which keyword weight suits which query.

Usage: python bench/fit_fusion.py [--data-dir DIR] [--models e5,use] [--ridge 3.0] [--dry-run]

Runs every labelled in-scope set in bench/data in hybrid mode with fixed weights and the floor
off, keeps each query's keyword and meaning rankings (outcome queries are left out: their metric
condition ranks them), and scores every candidate keyword weight by nDCG@10. Per weight, a ridge
regression predicts that nDCG from the query's features (search.hybrid.FEATURES); a query gets the
weight with the best prediction. Prints leave-one-set-out cross-validation (fitted on the other
sets, measured on the held one) against the fixed weight, then fits on every set and writes
search/data/fusion.json (unless --dry-run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_search import K, make_app, ndcg  # noqa: E402  # after the path setup

DATA = ROOT / "bench" / "data"
# Candidate keyword weights (meaning weighs 1): from ignoring keywords to trusting them most.
WEIGHTS = (0.0, 0.1, 0.2, 0.35, 0.6, 1.0, 1.6)


def collect(app: Any, path: Path) -> list[dict[str, Any]]:
    """Return, per query of a set, its features and the nDCG@10 of every candidate weight."""
    from kb.extensions import db
    from kb.models import Campaign
    from kb.searching import service
    from kb.searching.schemas import validate_search_query
    from search import hybrid, relevance
    from search.keyword import query_terms
    from search.outcomes import parse_outcome

    queries = json.loads(path.read_text(encoding="utf-8"))["queries"]
    captured: dict[str, dict[str, list[tuple[int, float]]]] = {}
    original = service._fuse

    def recording(rankings: dict[str, list[tuple[int, float]]], weights: Any = None) -> Any:
        captured["rankings"] = {name: list(r) for name, r in rankings.items()}
        return original(rankings, weights)

    rows = []
    service._fuse = recording  # type: ignore[assignment]
    service.RELEVANCE_FLOOR, hybrid.LEARNED_FUSION = False, False
    try:
        with app.app_context():
            external = dict(db.session.execute(db.select(Campaign.id, Campaign.external_id)).all())
            for item in queries:
                text = item["query"].strip()
                if not text:
                    continue
                if parse_outcome(text, service._catalog_lookup, service._METRIC_ALIASES):
                    continue
                args = {"q": text, "mode": "hybrid", "limit": K, **item.get("filters", {})}
                response = service.search(validate_search_query(args))
                rankings = captured.pop("rankings", {})
                if set(rankings) != {"keyword", "semantic"}:
                    continue
                features = hybrid.fusion_features(
                    text,
                    rankings["keyword"],
                    rankings["semantic"],
                    own_terms=len(relevance.content_terms(query_terms(text))),
                    expanded=bool(response.expansions),
                )
                scores = []
                for weight in WEIGHTS:
                    fused = hybrid.fuse_rankings(
                        rankings, weights={"keyword": weight, "semantic": 1.0}, method="zscore"
                    )
                    ranked = [external.get(h.campaign_id) or "" for h in fused[:K]]
                    scores.append(ndcg(ranked, item["relevant"]))
                rows.append({"set": path.name, "id": item["id"], "x": features, "y": scores})
    finally:
        service._fuse = original  # type: ignore[assignment]
        service.RELEVANCE_FLOOR, hybrid.LEARNED_FUSION = True, True
    return rows


def fit(rows: list[dict[str, Any]], ridge: float, margin: float) -> dict[str, Any]:
    """Return the model (search.hybrid.FusionModel fields) fitted on these rows."""
    x = np.array([r["x"] for r in rows], dtype=float)
    y = np.array([r["y"] for r in rows], dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    gram = z.T @ z + ridge * np.eye(z.shape[1])
    intercepts = y.mean(axis=0)
    coefficients = np.linalg.solve(gram, z.T @ (y - intercepts)).T  # weights x features
    return {
        "weights": list(WEIGHTS),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coefficients": coefficients.tolist(),
        "intercepts": intercepts.tolist(),
        "default": 0.35,
        "margin": margin,
    }


def chosen(model: dict[str, Any], rows: list[dict[str, Any]]) -> list[float]:
    """Return the nDCG@10 each row reaches with the weight the model picks for it."""
    from search.hybrid import FusionModel

    fusion = FusionModel(
        weights=tuple(model["weights"]),
        mean=tuple(model["mean"]),
        scale=tuple(model["scale"]),
        coefficients=tuple(tuple(row) for row in model["coefficients"]),
        intercepts=tuple(model["intercepts"]),
        default=model["default"],
        margin=model["margin"],
    )
    return [r["y"][WEIGHTS.index(fusion.choose(r["x"]))] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", default="e5,use")
    parser.add_argument("--ridge", type=float, default=3.0)
    parser.add_argument("--margin", type=float, default=0.0, help="nDCG a change must promise")
    parser.add_argument("--dry-run", action="store_true", help="do not write the model")
    options = parser.parse_args()
    from search import hybrid

    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-eval-"))
    app = make_app(data_dir, options.models)
    paths = [p for p in sorted(DATA.glob("search_*.json")) if "outofscope" not in p.name]
    rows = [row for path in paths for row in collect(app, path)]
    fixed = WEIGHTS.index(0.35)
    print(
        f"{len(rows)} queries (outcome queries left out); weights {WEIGHTS}; "
        f"ridge {options.ridge}; margin {options.margin}"
    )
    print("leave-one-set-out: nDCG@10 fixed 0.35 -> learned (best single weight; oracle)")
    for path in paths:
        held = [r for r in rows if r["set"] == path.name]
        model = fit([r for r in rows if r["set"] != path.name], options.ridge, options.margin)
        learned = statistics.fmean(chosen(model, held))
        base = statistics.fmean(r["y"][fixed] for r in held)
        single = max(statistics.fmean(r["y"][i] for r in held) for i in range(len(WEIGHTS)))
        oracle = statistics.fmean(max(r["y"]) for r in held)
        print(
            f"  {path.name:<22} {base:.3f} -> {learned:.3f} ({learned - base:+.3f}); "
            f"best single {single:.3f}; oracle {oracle:.3f}"
        )
    model = fit(rows, options.ridge, options.margin)
    print(f"all sets, in-sample: {statistics.fmean(chosen(model, rows)):.3f}")
    if not options.dry_run:
        body = {"features": list(hybrid.FEATURES), **model}
        hybrid.FUSION_MODEL_PATH.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        print(f"written: {hybrid.FUSION_MODEL_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
