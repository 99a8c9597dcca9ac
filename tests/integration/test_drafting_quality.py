"""Drafting quality with the real models on the demo data and the labelled drafts."""

from __future__ import annotations

import json
from typing import Any

from bench.eval_drafts import DEVSET, evaluate


def test_similar_cases_and_collisions_meet_targets(demo_app: Any) -> None:
    figures = evaluate(demo_app, json.loads(DEVSET.read_text(encoding="utf-8")))
    assert figures["ndcg"] >= 0.93
    assert figures["collision_precision"] == 1.0
    assert figures["collision_recall"] == 1.0
    assert figures["stacking_precision"] == 1.0
    assert figures["stacking_recall"] == 1.0
