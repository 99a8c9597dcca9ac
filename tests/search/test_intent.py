"""The query-intent classifier (search/intent.py), its fit and its place in the floor's features."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from search import intent, relevance
from search.intent import IntentModel, load_intent
from search.relevance import Calibration, Judgement, KeywordSignals

CALIBRATION = Calibration(
    affinity=1.0, top=3.0, doc=2.0, samples=20, affinity_spread=0.5, top_spread=2.0
)
NO_WORDS = KeywordSignals(word_matched=False, idf_share=0.0, coverage=0.0, terms=0)


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_the_logit_is_one_dot_product_per_model_plus_the_intercept() -> None:
    model = IntentModel(
        weights={"e5": np.array([1.0, -2.0]), "use": np.array([0.5, 0.0, 3.0])}, intercept=-0.25
    )
    e5, use = _unit(3, 4), _unit(1, 2, 2)
    expected = 1.0 * 0.6 - 2.0 * 0.8 + 0.5 / 3 + 3.0 * 2 / 3 - 0.25
    assert model.logit({"e5": e5, "use": use}) == pytest.approx(expected, abs=1e-6)
    assert math.isnan(model.logit({"e5": e5}))  # a model's vector missing
    assert math.isnan(model.logit({"e5": e5, "use": None}))
    assert math.isnan(model.logit({"e5": e5, "use": _unit(1, 2)}))  # another dimension


def test_load_intent_reads_the_fits_and_refuses_a_broken_file(tmp_path: Path) -> None:
    good = {"fits": {"e5+use": {"weights": {"e5": [1.0, 0.0], "use": [0.0, 2.0]}, "intercept": 1}}}
    path = tmp_path / "intent.json"
    path.write_text(json.dumps(good), encoding="utf-8")
    loaded = load_intent(path)["e5+use"]
    assert loaded.logit({"e5": np.array([0.5, 0.5]), "use": np.array([0.5, 0.5])}) == 2.5
    # Weights under other models than the key names: no classifier at all, not a wrong one.
    wrong = {"fits": {"e5+use": {"weights": {"e5": [1.0], "bge": [1.0]}, "intercept": 0}}}
    path.write_text(json.dumps(wrong), encoding="utf-8")
    assert load_intent(path) == {}
    path.write_text("{", encoding="utf-8")
    assert load_intent(path) == {}
    assert load_intent(tmp_path / "missing.json") == {}


def _judgement(models: tuple[str, ...], queries: tuple[np.ndarray | None, ...]) -> Judgement:
    return Judgement(
        in_scope=True,
        affinity=2.0,
        strengths={1: 7.0, 2: 5.0},
        contrast=0.5,
        contrasts=(1.0, 0.0)[: len(models)],
        rankings=((1, 2),) * len(models),
        models=models,
        queries=queries,
    )


def test_the_floor_feature_is_the_shipped_classifier_s_clipped_logit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    classifier = IntentModel(
        weights={"e5": np.array([2.0, 0.0]), "use": np.array([0.0, 1.0])}, intercept=0.5
    )
    monkeypatch.setattr(intent, "shipped", lambda: {"e5+use": classifier})
    e5, use = _unit(1, 0), _unit(0, 1)
    values = relevance.features(_judgement(("e5", "use"), (e5, use)), CALIBRATION, NO_WORDS, "x")
    assert values["intent"] == pytest.approx(3.5)
    # The models come in the serving order, the fit is keyed by their sorted names.
    swapped = _judgement(("use", "e5"), (use, e5))
    assert relevance.features(swapped, CALIBRATION, NO_WORDS, "x")["intent"] == pytest.approx(3.5)
    loud = IntentModel(weights={"e5": np.array([100.0, 0.0]), "use": np.zeros(2)}, intercept=0)
    monkeypatch.setattr(intent, "shipped", lambda: {"e5+use": loud})
    values = relevance.features(_judgement(("e5", "use"), (e5, use)), CALIBRATION, NO_WORDS, "x")
    assert values["intent"] == relevance.CLIP


def test_without_a_classifier_or_a_vector_the_decision_falls_back_to_the_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    classifier = IntentModel(weights={"e5": np.ones(2), "use": np.ones(2)}, intercept=0.0)
    monkeypatch.setattr(intent, "shipped", lambda: {"e5+use": classifier})
    third = _judgement(("bge", "e5"), (_unit(1, 0), _unit(1, 0)))
    assert math.isnan(relevance.features(third, CALIBRATION, NO_WORDS, "x")["intent"])
    no_vector = _judgement(("e5", "use"), (_unit(1, 0), None))
    assert math.isnan(relevance.features(no_vector, CALIBRATION, NO_WORDS, "x")["intent"])
    # A floor fit that reads the intent then cannot judge: decide keeps the rule's verdict.
    names = ("contrast", "intent")
    model = relevance.ScopeModel(
        features=names, mean=(0, 0), scale=(1, 1), coef=(0, 9), intercept=-9, threshold=0.5
    )
    monkeypatch.setattr(relevance, "_shipped_models", lambda: {"e5+use": model})
    rule = no_vector.corroborated(CALIBRATION, word_matched=False)
    assert rule.in_scope is False  # near the floor, no word of its own
    assert relevance.decide(no_vector, CALIBRATION, NO_WORDS, "x") == rule
    both = _judgement(("e5", "use"), (_unit(1, 0), _unit(1, 0)))
    assert relevance.decide(both, CALIBRATION, NO_WORDS, "x").in_scope is True  # -9 + 9 * 2


def test_judge_keeps_each_model_s_query_vector_in_order() -> None:
    e5, use = _unit(1, 0), _unit(0, 1, 0)
    models = [
        relevance.ModelScores(
            scores=[(1, 0.9)], background=np.array([0.1, 0.2] * 5), centroid=0.5, model=name,
            query=vector,
        )
        for name, vector in (("e5", e5), ("use", use))
    ]  # fmt: skip
    judged = relevance.judge(models, CALIBRATION)
    assert judged.models == ("e5", "use")
    assert judged.queries[0] is e5
    assert judged.queries[1] is use


def test_the_text_feature_reads_the_query_s_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    text = intent.TextModel(
        idf={"由": 2.0, "来": 1.0, "复": 1.0},
        weights={"由": -3.0, "来": -1.0, "复": 2.0},
        intercept=0.5,
    )
    vectors = {"e5": np.ones(2), "use": np.ones(2)}
    classifier = IntentModel(weights=vectors, intercept=0.0, text=text)
    monkeypatch.setattr(intent, "shipped", lambda: {"e5+use": classifier})
    judged = _judgement(("e5", "use"), (_unit(1, 0), _unit(1, 0)))
    # 由 and 来 once each: TF-IDF (2, 1) scaled to unit length, then the weights.
    expected = 0.5 + (-3.0 * 2.0 - 1.0 * 1.0) / math.sqrt(5.0)
    values = relevance.features(judged, CALIBRATION, NO_WORDS, "由来")
    assert values["intent_text"] == pytest.approx(expected)
    assert relevance.features(judged, CALIBRATION, NO_WORDS, "天气")["intent_text"] == 0.5
    monkeypatch.setattr(intent, "shipped", lambda: {"e5+use": IntentModel(vectors, 0.0)})
    assert math.isnan(relevance.features(judged, CALIBRATION, NO_WORDS, "由来")["intent_text"])
