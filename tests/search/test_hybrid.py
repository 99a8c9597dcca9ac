"""Rank fusion: RRF values, z-score behaviour, weights, tie-breaks and contributions."""

from __future__ import annotations

import math
from typing import Any

import pytest

from search.hybrid import (
    MISSING_Z_MARGIN,
    FusedHit,
    combine_semantic,
    fuse_rankings,
)


def ids(hits: list[FusedHit]) -> list[int]:
    return [hit.campaign_id for hit in hits]


def test_rrf_known_values() -> None:
    hits = fuse_rankings({"keyword": [(1, 9.0), (2, 5.0)], "semantic": [(2, 0.9), (3, 0.8)]})
    assert ids(hits) == [2, 1, 3]
    by_id = {hit.campaign_id: hit for hit in hits}
    assert by_id[2].score == pytest.approx(1 / 62 + 1 / 61)
    assert by_id[2].contributions == {"keyword": 1 / 62, "semantic": 1 / 61}
    assert by_id[1].contributions == {"keyword": 1 / 61}
    assert by_id[3].score == pytest.approx(1 / 62)


def test_rrf_uses_weights_and_k() -> None:
    hits = fuse_rankings(
        {"keyword": [(1, 9.0)], "semantic": [(2, 0.9)]}, weights={"keyword": 3.0}, k=0
    )
    assert [(h.campaign_id, h.score) for h in hits] == [(1, 3.0), (2, 1.0)]


def test_rrf_ignores_scores_and_counts_a_repeated_id_once() -> None:
    hits = fuse_rankings({"keyword": [(7, 0.1), (8, 99.0), (7, 50.0)]})
    assert [(h.campaign_id, h.score) for h in hits] == [(7, 1 / 61), (8, 1 / 62)]


def test_ties_go_to_the_lower_campaign_id() -> None:
    hits = fuse_rankings({"a": [(5, 1.0)], "b": [(3, 1.0)], "c": [(4, 2.0)]})
    assert ids(hits) == [3, 4, 5]
    zhits = fuse_rankings({"a": [(9, 1.0), (2, 1.0)]}, method="zscore")
    assert ids(zhits) == [2, 9]


def test_zero_weight_source_is_ignored() -> None:
    hits = fuse_rankings({"a": [(1, 1.0)], "b": [(2, 1.0)]}, weights={"b": 0.0})
    assert ids(hits) == [1]


def test_zscore_known_values() -> None:
    hits = fuse_rankings(
        {"a": [(1, 3.0), (2, 2.0), (3, 1.0)], "b": [(3, 10.0), (4, 0.0)]}, method="zscore"
    )
    z = math.sqrt(1.5)  # (3 - 2) / sqrt(2/3)
    want = {
        1: z + (-1 - MISSING_Z_MARGIN),
        2: 0 + (-1 - MISSING_Z_MARGIN),
        3: -z + 1,
        4: -1 + (-z - MISSING_Z_MARGIN),
    }
    assert ids(hits) == sorted(want, key=lambda cid: -want[cid])
    for hit in hits:
        assert hit.score == pytest.approx(want[hit.campaign_id])
    # Contributions hold what the sources that returned the campaign gave; penalties are extra.
    assert {h.campaign_id: h.contributions for h in hits}[3] == {
        "a": pytest.approx(-z),
        "b": pytest.approx(1.0),
    }


@pytest.mark.parametrize("ranking", [[(1, 0.7)], [(1, 0.5), (2, 0.5), (3, 0.5)]])
def test_zscore_without_spread_gives_zero(ranking: list[tuple[int, float]]) -> None:
    hits = fuse_rankings({"a": ranking, "b": [(9, 2.0), (8, 1.0)]}, method="zscore")
    for cid, _ in ranking:
        hit = next(h for h in hits if h.campaign_id == cid)
        assert hit.contributions == {"a": 0.0}
        assert hit.score == pytest.approx(-1 - MISSING_Z_MARGIN)
    assert next(h for h in hits if h.campaign_id == 9).score == pytest.approx(1 - MISSING_Z_MARGIN)


def test_zscore_ignores_each_sources_scale() -> None:
    a = [(1, 0.91), (2, 0.88), (3, 0.80), (4, 0.79)]
    b = [(3, 14.0), (5, 12.5), (1, 3.0)]
    rescaled = [(cid, 1000 * s - 7) for cid, s in a]
    plain = fuse_rankings({"a": a, "b": b}, method="zscore", weights={"b": 0.5})
    scaled = fuse_rankings({"a": rescaled, "b": b}, method="zscore", weights={"b": 0.5})
    assert ids(plain) == ids(scaled)
    assert [h.score for h in plain] == pytest.approx([h.score for h in scaled])


def test_combine_semantic_rewards_agreement() -> None:
    e5 = [(1, 0.90), (2, 0.86), (3, 0.70), (4, 0.69)]
    use = [(2, 0.55), (5, 0.54), (3, 0.40), (4, 0.38)]
    fused = combine_semantic({"e5": e5, "use": use})
    assert fused[0][0] == 2  # second for e5, first for USE
    assert fused == [
        (h.campaign_id, h.score) for h in fuse_rankings({"e5": e5, "use": use}, method="zscore")
    ]


def test_empty_input() -> None:
    assert fuse_rankings({}) == []
    assert fuse_rankings({"a": []}, method="zscore") == []
    assert combine_semantic({"e5": [], "use": [(1, 0.3)]}) == [(1, 0.0)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "sum"}, "unknown fusion method"),
        ({"weights": {"a": -1.0}}, "not negative"),
        ({"k": -1}, "k must not"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fuse_rankings({"a": [(1, 1.0)]}, **kwargs)


def test_non_finite_scores_are_rejected() -> None:
    with pytest.raises(ValueError, match="not finite"):
        fuse_rankings({"a": [(1, math.nan)]}, method="zscore")
