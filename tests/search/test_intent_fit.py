"""bench/fit_floor.py's intent classifier: folded standardization, out-of-fold scores, its data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import fit_floor
from search.intent import load_intent

DIMENSIONS = {"e5": 6, "use": 4}


def _vectors(rng: np.random.Generator, lean: float) -> dict[str, np.ndarray]:
    """Unit vectors per model whose first component leans by ``lean``."""
    found = {}
    for name, size in DIMENSIONS.items():
        vector = rng.normal(size=size)
        vector[0] += lean
        found[name] = (vector / np.linalg.norm(vector)).astype(np.float32)
    return found


def _row(rng: np.random.Generator, query: str, in_scope: bool) -> dict[str, Any]:
    vectors = _vectors(rng, 1.5 if in_scope else -1.5)
    return {
        "query": query,
        "in_scope": in_scope,
        "features": {"contrast": 0.0},
        "vectors": fit_floor._encoded(vectors),
    }


def _sets(rng: np.random.Generator) -> dict[str, Any]:
    sets = {}
    for name, in_scope in (("a", True), ("b", True), ("c", False), ("d", False), ("e", True)):
        rows = [_row(rng, f"{name}{i}", in_scope) for i in range(30)]
        sets[name] = {"in_scope": in_scope, "queries": rows}
    return sets


def test_the_folded_weights_are_the_standardized_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    examples = [(_row(rng, str(i), i % 3 == 0)["vectors"], i % 3 == 0) for i in range(90)]
    classifier = fit_floor.fit_intent(examples, c=0.5)
    x = np.array(
        [
            np.concatenate([fit_floor.decoded(v["e5"]), fit_floor.decoded(v["use"])])
            for v, _ in examples
        ]
    )
    labels = [label for _, label in examples]
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    reference = LogisticRegression(C=0.5, class_weight="balanced", max_iter=5000).fit(z, labels)
    logits = classifier.logits([v for v, _ in examples])
    assert logits == pytest.approx(reference.decision_function(z), abs=1e-6)
    assert [len(w) for w in classifier.weights.values()] == [6, 4]
    # The separable lean is learned: in-scope rows score higher.
    assert np.mean(logits[np.array(labels)]) > np.mean(logits[~np.array(labels)])


def test_the_stored_classifier_serves_the_same_logit(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    examples = [(_row(rng, str(i), i % 2 == 0)["vectors"], i % 2 == 0) for i in range(40)]
    classifier = fit_floor.fit_intent(examples)
    path = tmp_path / "intent_model.json"
    captures: dict[str, Any] = {"sets": {}, "intent_train": []}
    stored = fit_floor.stored_intent(classifier, captures)
    path.write_text(json.dumps({"fits": {"e5+use": stored}}), encoding="utf-8")
    served = load_intent(path)["e5+use"]
    query = _vectors(rng, 0.3)  # float32, as the product embeds
    encoded = fit_floor._encoded(dict(query))
    assert encoded is not None
    expected = classifier.logits([encoded])[0]  # via float16, as captured
    assert served.logit(query) == pytest.approx(expected, abs=0.05)
    assert fit_floor.same_fit(stored, fit_floor.stored_intent(classifier, captures))


def test_a_set_s_intent_comes_from_a_classifier_that_never_saw_it() -> None:
    sets = _sets(np.random.default_rng(7))
    scored = fit_floor.with_intent(sets, [])
    # Relabel set "a" (and only it): its own scores stay, the other sets' scores move.
    relabelled = {**sets, "a": {**sets["a"], "in_scope": False}}
    rescored = fit_floor.with_intent(relabelled, [])

    def intents(s: dict[str, Any], name: str) -> list[float]:
        return [row["features"]["intent"] for row in s[name]["queries"]]

    assert intents(rescored, "a") == intents(scored, "a")
    assert intents(rescored, "b") != pytest.approx(intents(scored, "b"), abs=1e-3)
    # The features the floor already had are kept beside the intent.
    assert all(row["features"]["contrast"] == 0.0 for row in scored["c"]["queries"])


def test_the_training_queries_a_labelled_set_holds_are_left_out() -> None:
    rng = np.random.default_rng(9)
    sets = _sets(rng)
    train = [_row(rng, "a3", False), _row(rng, "fresh", True)]
    captures = {"sets": sets, "intent_train": train}
    assert [row["query"] for row in fit_floor.intent_train(captures)] == ["fresh"]


def test_the_text_classifier_serves_what_scikit_learn_computes() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [
        ("双十一的由来", False), ("双十一预售复盘", True), ("小龙虾怎么洗", False),
        ("小龙虾节 直播 复盘", True), ("纸尿裤尺码怎么选", False), ("纸尿裤 会员 拉新", True),
        ("企业微信管理员怎么设置", False), ("企业微信 社群 复购", True),
        ("Black Friday history", False), ("Black Friday campaign lessons", True),
    ]  # fmt: skip
    served = fit_floor.fit_text(texts)
    vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=2
    )
    x = vectorizer.fit_transform([t for t, _ in texts])
    labels = [label for _, label in texts]
    reference = LogisticRegression(C=fit_floor.TEXT_C, class_weight="balanced", max_iter=5000)
    reference.fit(x, labels)
    probes = ["双十一的由来是什么", "企业微信 复盘", "没有一个见过的字", "LINE 帳號"]
    expected = reference.decision_function(vectorizer.transform(probes))
    assert [served.logit(p) for p in probes] == pytest.approx(expected, abs=1e-9)
    # The question form is learned: 由来 and 怎么 lean out of scope, 复盘 in.
    assert served.logit("母亲节的由来") < served.logit("母亲节 复盘")
