"""The relevance floor's learned decision: its features, the fitted model, the fall-back rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from search import intent, relevance
from search.relevance import (
    FEATURES,
    Calibration,
    Judgement,
    KeywordSignals,
    ScopeModel,
    decide,
    features,
    keyword_signals,
    load_models,
)

CALIBRATION = Calibration(
    affinity=1.0, top=3.0, doc=2.0, samples=20, affinity_spread=0.5, top_spread=2.0
)
NO_WORDS = KeywordSignals(word_matched=False, idf_share=0.0, coverage=0.0, terms=0)


def _judgement(**fields: object) -> Judgement:
    values: dict[str, object] = {
        "in_scope": True,
        "affinity": 2.0,
        "strengths": {1: 7.0, 2: 5.0, 3: 4.0, 4: 3.5, 5: 3.0, 6: 1.0},
        "contrast": 0.5,
        "contrasts": (1.0, 0.0),
        "rankings": ((1, 2, 3, 4, 5, 6), (1, 2, 7, 3, 9, 4)),
        "models": ("e5", "use"),
    }
    values.update(fields)
    return Judgement(**values)  # type: ignore[arg-type]


def test_keyword_signals_weigh_the_query_s_own_terms_by_rarity() -> None:
    hits = [(1, ("会员", "积分")), (2, ("会员",)), (3, ("会员", "拼团"))]
    signals = keyword_signals(["奶粉", "会员", "积分", "的"], hits, corpus_size=10)
    idf = {t: math.log(1 + (10 - df + 0.5) / (df + 0.5)) for t, df in
           {"奶粉": 0, "会员": 3, "积分": 1}.items()}  # fmt: skip
    mass = sum(idf.values())
    assert signals.word_matched
    assert signals.terms == 3  # "的" is no content term
    assert signals.idf_share == pytest.approx((idf["会员"] + idf["积分"]) / mass)
    assert signals.coverage == pytest.approx((idf["会员"] + idf["积分"]) / mass)
    # A term no campaign has weighs most: 奶粉 alone holds more than a third of the mass.
    assert idf["奶粉"] / mass > 1 / 3


def test_keyword_signals_coverage_counts_terms_found_in_different_campaigns() -> None:
    signals = keyword_signals(["拼团", "宝妈"], [(1, ("拼团",)), (2, ("宝妈",))], corpus_size=4)
    assert signals.coverage == pytest.approx(1.0)
    assert signals.idf_share == pytest.approx(0.5)


def test_keyword_signals_without_content_terms_or_hits() -> None:
    assert keyword_signals(["如何", "的"], [(1, ("拼团",))], corpus_size=5) == NO_WORDS
    none = keyword_signals(["量子"], [], corpus_size=5)
    assert (none.word_matched, none.idf_share, none.coverage, none.terms) == (False, 0, 0, 1)


def test_features_are_margins_in_background_spreads_and_model_agreement() -> None:
    signals = KeywordSignals(word_matched=True, idf_share=0.4, coverage=0.6, terms=3)
    values = features(_judgement(), CALIBRATION, signals, "拼团 GMV")
    assert list(values) == list(FEATURES)
    assert values["affinity"] == pytest.approx((2.0 - 1.0) / 0.5)
    assert values["top"] == pytest.approx((7.0 - 3.0) / 2.0)
    assert values["top_gap"] == pytest.approx((7.0 - 3.0) / 2.0)  # best minus the 5th
    assert values["contrast"] == pytest.approx(0.5)
    assert values["contrast_min"] == pytest.approx(0.0)
    assert values["agreement"] == pytest.approx(3 / 5)  # 1, 2, 3 in both top fives
    assert values["word"] == 1.0
    assert (values["idf_share"], values["coverage"]) == (0.4, 0.6)
    assert values["terms"] == pytest.approx(math.log(4))
    assert values["latin"] == pytest.approx(3 / 5)


def test_features_are_clipped_or_missing_rather_than_infinite() -> None:
    empty = features(_judgement(strengths={}, affinity=-math.inf), CALIBRATION, NO_WORDS, "")
    assert (empty["top"], empty["affinity"], empty["top_gap"]) == (-10.0, -10.0, 0.0)
    no_library = features(_judgement(contrasts=(1.0, None)), CALIBRATION, NO_WORDS, "x")
    assert math.isnan(no_library["contrast"])
    assert math.isnan(no_library["contrast_min"])
    one_model = features(_judgement(rankings=((1, 2),)), CALIBRATION, NO_WORDS, "x")
    assert math.isnan(one_model["agreement"])


# The features without the intent classifiers (they need a shipped classifier: test_intent.py).
WITHOUT_INTENT = tuple(name for name in FEATURES if not name.startswith("intent"))


def _model(threshold: float = 0.5, contrast_weight: float = 2.0) -> ScopeModel:
    coef = [contrast_weight if name == "contrast" else 0.0 for name in WITHOUT_INTENT]
    return ScopeModel(
        features=WITHOUT_INTENT,
        mean=tuple(0.0 for _ in WITHOUT_INTENT),
        scale=tuple(1.0 for _ in WITHOUT_INTENT),
        coef=tuple(coef),
        intercept=-1.0,
        threshold=threshold,
    )


def test_the_model_is_a_logistic_regression_on_standardized_features() -> None:
    model = ScopeModel(
        features=("contrast", "word"),
        mean=(1.0, 0.5),
        scale=(2.0, 0.5),
        coef=(1.5, -1.0),
        intercept=0.25,
        threshold=0.5,
    )
    logit = 1.5 * (3.0 - 1.0) / 2.0 - 1.0 * (1.0 - 0.5) / 0.5 + 0.25
    assert model.probability({"contrast": 3.0, "word": 1.0}) == pytest.approx(
        1 / (1 + math.exp(-logit))
    )
    assert math.isnan(model.probability({"contrast": 3.0}))


def test_decide_by_the_fit_of_the_serving_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relevance, "_shipped_models", lambda: {"e5+use": _model()})
    near = _judgement(contrasts=(0.0, 0.2))  # logit 2 * 0.1 - 1 < 0
    far = _judgement(in_scope=False, contrasts=(2.0, 2.0))  # logit 3 > 0
    assert not decide(near, CALIBRATION, NO_WORDS, "q").in_scope
    assert decide(far, CALIBRATION, NO_WORDS, "q").in_scope
    # The decision changes the verdict only: strengths and contrasts are kept for the page.
    assert decide(near, CALIBRATION, NO_WORDS, "q").strengths == near.strengths


def test_without_a_fit_for_the_models_the_rule_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relevance, "_shipped_models", lambda: {"e5+use": _model(threshold=0.99)})
    # One model alone (or a third model): the calibrated rule, which lets this query through...
    alone = _judgement(models=("e5",), contrasts=(2.0,), rankings=((1, 2),), contrast=2.0)
    assert decide(alone, CALIBRATION, NO_WORDS, "q").in_scope
    # ...and asks a query in its middle band for a word of its own.
    middle = _judgement(models=("e5", "bge"), contrast=0.5)
    assert not decide(middle, CALIBRATION, NO_WORDS, "q").in_scope
    words = KeywordSignals(word_matched=True, idf_share=0.5, coverage=0.5, terms=2)
    assert decide(middle, CALIBRATION, words, "q").in_scope
    # A feature missing (library texts not embedded yet): the rule too.
    pending = _judgement(contrasts=(None, None), contrast=None)
    assert decide(pending, CALIBRATION, NO_WORDS, "q").in_scope
    monkeypatch.setattr(relevance, "LEARNED", False)
    fitted = _judgement(contrast=2.0)
    assert decide(fitted, CALIBRATION, NO_WORDS, "q").in_scope  # the fit would say no


def test_a_broken_or_inconsistent_model_file_gives_no_fit(tmp_path: Path) -> None:
    path = tmp_path / "floor_model.json"
    assert load_models(path) == {}  # missing
    path.write_text("{not json", encoding="utf-8")
    assert load_models(path) == {}
    fit = {"mean": [0.0], "scale": [1.0], "coef": [1.0, 2.0], "intercept": 0, "threshold": 0.5}
    path.write_text(json.dumps({"features": ["contrast"], "fits": {"e5+use": fit}}), "utf-8")
    assert load_models(path) == {}
    fit["coef"] = [1.0]
    path.write_text(json.dumps({"features": ["contrast"], "fits": {"e5+use": fit}}), "utf-8")
    assert load_models(path)["e5+use"].coef == (1.0,)


def test_the_shipped_model_is_fitted_for_the_default_models_on_the_current_features() -> None:
    stored = json.loads(relevance.MODEL_PATH.read_text(encoding="utf-8"))
    assert stored["features"] == list(FEATURES)
    models = load_models()
    assert "e5+use" in models
    fit = models["e5+use"]
    assert 0.0 < fit.threshold < 1.0
    assert all(math.isfinite(v) for v in (*fit.coef, *fit.mean, fit.intercept))
    assert all(s > 0 for s in fit.scale)


@pytest.mark.parametrize(
    ("contrast", "affinity", "top", "word", "expected"),
    [
        (-0.6, 5.0, 5.0, 1.0, 0.0),  # nearer another topic than the library: out
        (1.2, -5.0, -5.0, 0.0, 1.0),  # clearly nearer the library: in, no word needed
        (0.3, 0.5, -1.0, 1.0, 1.0),  # the middle band: above a floor and a word of its own
        (0.3, 0.5, -1.0, 0.0, 0.0),  # ...without the word: out
        (0.3, -0.5, -1.0, 1.0, 0.0),  # ...below both floors: out
    ],
)
def test_the_rule_s_verdict_is_the_rule_on_the_features(
    contrast: float, affinity: float, top: float, word: float, expected: float
) -> None:
    values = {"contrast": contrast, "affinity": affinity, "top": top, "word": word}
    assert relevance.rule_verdict(values) == expected
    assert math.isnan(relevance.rule_verdict({**values, "contrast": math.nan}))


def test_the_rule_feature_agrees_with_the_rule_itself() -> None:
    # The same query through judge + corroborated and through the features.
    judgement = _judgement(contrast=0.3, contrasts=(0.3, 0.3), affinity=1.2, strengths={1: 2.0})
    for word in (True, False):
        signals = KeywordSignals(word_matched=word, idf_share=0.5, coverage=0.5, terms=2)
        rule = judgement.corroborated(CALIBRATION, word_matched=word).in_scope
        assert features(judgement, CALIBRATION, signals, "q")["rule"] == float(rule)


def test_the_shipped_fit_is_what_fit_floor_makes_of_the_captures() -> None:
    # bench/fit_floor.py --check: refitting the stored captures gives the shipped numbers, so
    # nobody edited them by hand and the features have not changed since the captures.
    from bench import fit_floor

    captures = json.loads(fit_floor.CAPTURES.read_text(encoding="utf-8"))
    fitted, classifier = fit_floor.fit_all(captures)
    shipped = json.loads(relevance.MODEL_PATH.read_text(encoding="utf-8"))["fits"]
    assert fit_floor.same_fit(shipped[captures["models"]], fitted)
    moved = {**fitted, "threshold": fitted["threshold"] + 0.01}
    assert not fit_floor.same_fit(shipped[captures["models"]], moved)
    shipped_intent = json.loads(intent.INTENT_PATH.read_text(encoding="utf-8"))["fits"]
    assert fit_floor.same_fit(shipped_intent[captures["models"]], classifier)
    weights = classifier["weights"]
    nudged = {**classifier, "weights": {**weights, "e5": [w + 0.01 for w in weights["e5"]]}}
    assert not fit_floor.same_fit(shipped_intent[captures["models"]], nudged)
    # The intent is never captured (it would be the shipped classifier's, fitted on these very
    # queries): bench/fit_floor.py computes it out of fold from each query's vectors.
    for rows in (s["queries"] for s in captures["sets"].values()):
        assert all(set(r["features"]) == set(WITHOUT_INTENT) for r in rows if r["features"])
        assert all(r["vectors"] for r in rows if r["features"])
