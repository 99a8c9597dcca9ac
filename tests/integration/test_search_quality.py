"""Search quality with the real models on the demo data and the labelled dev set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.eval_search import DEVSET, evaluate, make_app
from tests.integration.conftest import MODELS_DIR


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, float]]]:
    data_dir: Path = tmp_path_factory.mktemp("eval")
    app: Any = make_app(data_dir, "e5,use", models_dir=MODELS_DIR)
    queries = json.loads(DEVSET.read_text(encoding="utf-8"))["queries"]
    return {mode: evaluate(app, queries, mode) for mode in ("keyword", "semantic", "hybrid")}


def test_hybrid_beats_both_single_modes(scores: dict[str, dict[str, dict[str, float]]]) -> None:
    hybrid = scores["hybrid"]["overall"]["ndcg"]
    assert hybrid > scores["semantic"]["overall"]["ndcg"]
    assert hybrid > scores["keyword"]["overall"]["ndcg"]


def test_hybrid_quality_targets(scores: dict[str, dict[str, dict[str, float]]]) -> None:
    assert scores["hybrid"]["overall"]["ndcg"] >= 0.85
    assert scores["hybrid"]["cross_lingual"]["ndcg"] >= 0.75
    assert scores["hybrid"]["keyword"]["ndcg"] >= 0.9
    assert scores["hybrid"]["outcome"]["ndcg"] >= 0.85
