"""Search quality with the real models on the demo data and the labelled dev set."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.eval_search import DEVSET, evaluate


@pytest.fixture(scope="module")
def scores(demo_app: Any) -> dict[str, dict[str, dict[str, float]]]:
    queries = json.loads(DEVSET.read_text(encoding="utf-8"))["queries"]
    return {mode: evaluate(demo_app, queries, mode) for mode in ("keyword", "semantic", "hybrid")}


def test_hybrid_beats_both_single_modes(scores: dict[str, dict[str, dict[str, float]]]) -> None:
    hybrid = scores["hybrid"]["overall"]["ndcg"]
    assert hybrid > scores["semantic"]["overall"]["ndcg"]
    assert hybrid > scores["keyword"]["overall"]["ndcg"]


def test_hybrid_quality_targets(scores: dict[str, dict[str, dict[str, float]]]) -> None:
    assert scores["hybrid"]["overall"]["ndcg"] >= 0.85
    assert scores["hybrid"]["cross_lingual"]["ndcg"] >= 0.75
    assert scores["hybrid"]["keyword"]["ndcg"] >= 0.9
    assert scores["hybrid"]["outcome"]["ndcg"] >= 0.85
