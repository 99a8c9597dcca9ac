"""The cross-validation script's own arithmetic: its passage aggregation, its fold choice, its
min-max fusion and its per-query weight model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.fit_search import (
    Aggregation,
    Capture,
    Config,
    aggregate,
    choose,
    corpus_of_blocks,
    cross_validate,
    fuse_minmax,
    fusion_kind,
    query_features,
    verdict,
)
from search.vector import SECOND_PASSAGE_WEIGHT, VectorIndex


def test_the_shipped_aggregation_scores_as_the_vector_index_does() -> None:
    rng = np.random.default_rng(7)
    dim = 16
    blocks = {cid: rng.normal(size=(int(rng.integers(1, 6)), dim)) for cid in range(1, 9)}
    index = VectorIndex("m", dim)
    for cid, rows in blocks.items():
        index.replace(cid, rows)
    unit = {cid: rows / np.linalg.norm(rows, axis=1, keepdims=True) for cid, rows in blocks.items()}
    corpus = corpus_of_blocks(
        {"m": [(cid, rows.astype(np.float32)) for cid, rows in unit.items()]}, {}
    )
    query = rng.normal(size=dim).astype(np.float32)
    query /= np.linalg.norm(query)
    scores = aggregate(
        corpus.rows["m"] @ query,
        corpus.means["m"] @ query,
        corpus.padded["m"],
        Aggregation(SECOND_PASSAGE_WEIGHT, 2),
    )
    expected = dict(index.search(query, limit=len(blocks)))
    got = dict(zip(corpus.owners["m"].tolist(), scores.tolist(), strict=True))
    assert got == pytest.approx(expected, abs=2e-3)  # the index stores float16 rows


def test_deeper_aggregation_and_the_mean_vector() -> None:
    cosines = np.array([0.9, 0.5, -0.2, 0.3], dtype=np.float32)
    pad = np.array([[0, 1, 2], [3, -1, -1]])
    centroid = np.array([0.95, 0.1], dtype=np.float32)
    best_only = aggregate(cosines, centroid, pad, Aggregation(0.0, 1))
    assert best_only.tolist() == pytest.approx([0.9, 0.3])
    # best + 0.5 × mean(max(second, 0), max(third, 0)); a missing passage counts 0.
    deeper = aggregate(cosines, centroid, pad, Aggregation(0.5, 3))
    assert deeper.tolist() == pytest.approx([0.9 + 0.5 * 0.25, 0.3])
    # The mean vector is one more passage: here the best of the first campaign.
    with_mean = aggregate(cosines, centroid, pad, Aggregation(0.1, 2, centroid=True))
    assert with_mean.tolist() == pytest.approx([0.95 + 0.1 * 0.9, 0.3 + 0.1 * 0.1])


def _captures(sets: dict[str, int]) -> list[Capture]:
    found = []
    for name, n in sets.items():
        for i in range(n):
            item: dict[str, Any] = {"id": f"{name}{i}", "type": "meaning", "relevant": {}}
            found.append(Capture(item, name, None, [], {}, set(), False, None))
    return found


def test_each_fold_picks_on_the_other_sets_only() -> None:
    captures = _captures({"a": 2, "b": 2, "c": 2})
    # "x" is best on a and b, "y" on c: leaving c out picks x, leaving a or b out picks y only
    # if the remaining sets prefer it.
    table = {
        "base": [0.5] * 6,
        "x": [0.9, 0.9, 0.9, 0.9, 0.1, 0.1],
        "y": [0.1, 0.1, 0.6, 0.6, 1.0, 1.0],
    }
    folds = {
        f["held_out"]: f["chosen"] for f in cross_validate(captures, table, "base", by_set=True)
    }
    assert folds == {"a": "y", "b": "y", "c": "x"}
    ties = {"base": [0.5] * 6, "same": [0.5] * 6}
    assert {f["chosen"] for f in cross_validate(captures, ties, "base", by_set=False)} == {"base"}


def test_weighing_sets_alike_differs_from_weighing_queries() -> None:
    captures = _captures({"big": 8, "small": 2, "out": 1})
    # On the training sets (big, small): "q" wins the mean over queries (big dominates), "s" the
    # mean of the two sets' means.
    table = {
        "base": [0.0] * 11,
        "q": [0.7] * 8 + [0.0] * 2 + [0.0],
        "s": [0.4] * 8 + [0.9] * 2 + [0.0],
    }
    by_queries = cross_validate(captures, table, "base", by_set=False)
    by_sets = cross_validate(captures, table, "base", by_set=True)
    assert next(f["chosen"] for f in by_queries if f["held_out"] == "out") == "q"
    assert next(f["chosen"] for f in by_sets if f["held_out"] == "out") == "s"


def test_the_fusion_kind_comes_from_the_query_text_alone() -> None:
    assert fusion_kind("livestream views exploded but sales barely moved", False) == "latin"
    assert fusion_kind("邀请奖励要等被邀请人连续活跃几天才发", False) == "chinese"
    # A Latin acronym in a Chinese query does not make it an English one.
    assert fusion_kind("KOL 种草 转化低", False) == "chinese"
    assert fusion_kind("HSK 中文课 学习伙伴 完课", False) == "chinese"
    # An outcome condition decides before the script does.
    assert fusion_kind("ROI below target", True) == "outcome"
    assert fusion_kind("ROI 低于预期", True) == "outcome"


def test_a_kind_without_its_own_weight_takes_the_global_one() -> None:
    config = Config(aggregation=(), keyword_weight=0.5, kind_keyword=(("outcome", 0.85),))
    assert config.keyword_weight_for("outcome") == 0.85
    assert config.keyword_weight_for("latin") == 0.5
    assert "kw[outcome]=0.85" in config.label()


def test_min_max_fusion_scales_each_list_and_charges_a_miss() -> None:
    rankings = {"keyword": [(1, 12.0), (2, 7.0), (3, 2.0)], "semantic": [(2, 0.9), (4, 0.5)]}
    fused = fuse_minmax(rankings, {"keyword": 0.5, "semantic": 1.0}, 0.25)
    scores = {h.campaign_id: h.score for h in fused}
    # keyword 12 -> 1, 7 -> 0.5, 2 -> 0 (× 0.5); semantic 0.9 -> 1, 0.5 -> 0; a miss costs
    # weight × 0.25.
    assert scores == pytest.approx({1: 0.5 - 0.25, 2: 0.25 + 1.0, 3: 0.0 - 0.25, 4: 0.0 - 0.125})
    assert [h.campaign_id for h in fused] == [2, 1, 4, 3]
    # Weight 0 ignores a source entirely, its misses too.
    alone = fuse_minmax(rankings, {"keyword": 0.0, "semantic": 1.0}, 0.25)
    assert [(h.campaign_id, h.score) for h in alone] == [(2, 1.0), (4, 0.0)]


def test_the_weight_model_picks_what_the_features_predict() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    # Candidate 0 gains when feature 0 is high, candidate 1 loses everywhere.
    gains = np.stack([0.1 * x[:, 0], np.full(200, -0.05)], axis=1)
    train, test = np.arange(150), np.arange(150, 200)
    picks = choose(x, gains, train, test, lam=1.0, margin=0.0)
    assert set(picks.tolist()) <= {-1, 0}  # candidate 1 never pays
    assert (picks[x[test, 0] > 0.3] == 0).all()
    assert (picks[x[test, 0] < -0.3] == -1).all()  # the shipped weight
    # A margin larger than any predicted gain keeps the shipped weight everywhere.
    assert (choose(x, gains, train, test, lam=1.0, margin=1.0) == -1).all()


def test_the_verdict_keeps_only_an_overall_gain_without_a_type_losing_much() -> None:
    assert "KEEP" in verdict({"a": (0.8, 0.81), "b": (0.9, 0.891), "overall": (0.85, 0.852)})
    assert "reject" in verdict({"a": (0.8, 0.83), "b": (0.9, 0.88), "overall": (0.85, 0.855)})
    assert "reject" in verdict({"a": (0.8, 0.8), "overall": (0.85, 0.85)})


def test_query_features_read_the_lists_before_fusion() -> None:
    item: dict[str, Any] = {"id": "q", "query": "KOL 种草 转化", "type": "meaning", "relevant": {}}
    cap = Capture(
        item,
        "s",
        None,
        [(1, 8.0), (2, 4.0)],
        {1: ("kol", "种草"), 2: ("种草", "转化")},
        {1},
        True,
        None,
    )
    feats = query_features(cap, [(2, 1.0), (1, 0.5)], {})
    assert feats["latin"] == pytest.approx(3 / 7)  # 3 Latin letters, 4 Han characters
    assert feats["kw_gap"] == pytest.approx(0.5)
    assert feats["kw_cover"] == pytest.approx(2 / 3)  # the top hit has 2 of the 3 terms matched
    assert feats["kw_first_in_sem"] == 1.0
    assert feats["sem_first_in_kw"] == 1.0
    assert feats["kw_sem_agree"] == pytest.approx(2 / 10)
    assert feats["outcome"] == 0.0
    assert feats["word_matched"] == 1.0
