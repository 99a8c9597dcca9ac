"""The corpus prior: base rates, the fitted shrinkage strength, range widths, ambition."""

from __future__ import annotations

import math
import random
import statistics
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.drafts.priors import (
    STRENGTH_BOUNDS,
    HitModel,
    PriorRow,
    _held_out_base_rates,
    build_prior,
    corpus_prior,
    family_of,
    fit_center_strength,
    fit_hit_model,
    fit_strength,
    hit_features,
    loo_residual_quartiles,
    ratio_prior,
    rows_of,
)
from tests.factories import campaign_payload


def row(cid: int, key: str, goal: str, hit: bool, attainment: float = 0.0) -> PriorRow:
    return PriorRow(cid, key, goal, "电商", attainment, None, hit)


def test_strength_is_strong_when_groups_differ_by_chance_only() -> None:
    alike = [[True, False] * 5 for _ in range(6)]  # every group at exactly 50 %
    assert fit_strength(alike, 0.5) == pytest.approx(STRENGTH_BOUNDS[1])


def test_strength_is_weak_when_groups_really_differ() -> None:
    apart = [[True] * 10, [False] * 10] * 4
    assert fit_strength(apart, 0.5) == pytest.approx(STRENGTH_BOUNDS[0])


def test_base_rates_shrink_from_metric_and_goal_to_metric_to_overall() -> None:
    rows = [row(i, "gmv", "gmv", i < 8) for i in range(10)] + [
        row(10 + i, "roi", "gmv", i < 2) for i in range(10)
    ]
    prior = build_prior(rows)
    overall = (10 + 0.5) / 21
    assert prior.overall.rate == pytest.approx(overall)
    m = prior.strength
    gmv = (8 + m * overall) / (10 + m)
    assert prior.by_key["gmv"].rate == pytest.approx(gmv)
    assert prior.base_rate("gmv", "gmv").rate == pytest.approx((8 + m * gmv) / (10 + m))
    assert prior.base_rate("gmv", "brand") == prior.by_key["gmv"]  # no such group: the metric
    assert prior.base_rate("nps", "gmv") == prior.overall


def test_center_strength_follows_how_much_neighbourhoods_really_differ() -> None:
    rng = random.Random(5)  # noqa: S311  # test data, not secrets
    noise_only = [[rng.gauss(0, 0.2) for _ in range(8)] for _ in range(30)]
    shifted = [[shift + rng.gauss(0, 0.2) for _ in range(8)] for shift in (-0.5, 0.5) * 15]
    assert fit_center_strength(noise_only) > 20  # analogs barely move the corpus median
    # σ² / τ² = 0.04 / 0.25 ≈ 0.16, held at the lower bound: analogs decide.
    assert fit_center_strength(shifted) == pytest.approx(STRENGTH_BOUNDS[0])
    assert fit_center_strength([[0.1, 0.2]]) == pytest.approx(STRENGTH_BOUNDS[1])  # too few


def test_ratio_prior_centers_are_per_metric_medians() -> None:
    values = [("gmv", "gmv", 0.1), ("gmv", "gmv", 0.3), ("gmv", "brand", 0.2), ("roi", "gmv", -0.4)]
    prior = ratio_prior([*values, ("roi", "gmv", None)])
    assert prior.center("gmv") == pytest.approx(0.2)
    assert prior.center("roi") == pytest.approx(-0.4)
    assert prior.center("nps") == pytest.approx(0.15)  # every metric's median


def test_ratio_prior_has_centers_and_widths_per_kind_of_metric() -> None:
    values = [("retention_d30", "retention", v) for v in (0.1, 0.2, 0.3)]
    values += [("renewal_rate", "retention", v) for v in (0.0, 0.4)]
    values += [("gmv", "gmv", v) for v in (-0.5, -0.4, -0.3, -0.2)]
    prior = ratio_prior(values)
    assert prior.family_center("rate") == pytest.approx(0.2)  # 30日留存 and 续费率 pooled
    assert prior.family_center("value") == pytest.approx(-0.35)
    assert prior.family_center("satisfaction") == prior.overall_center
    assert prior.family_residuals is not None
    assert prior.family_residuals[0] < 0 < prior.family_residuals[1]
    assert family_of("k_factor") == "rate"
    assert family_of("老客惊喜度") == "老客惊喜度"


def test_range_width_is_calibrated_leave_one_out() -> None:
    values = [(i, "gmv", v) for i, v in enumerate([0.0, 0.1, 0.2, 0.3, 0.4])]
    # Each value against the median of the other four: -0.25, -0.15, 0, 0.15, 0.25.
    low, high = loo_residual_quartiles(values)
    assert (low, high) == (pytest.approx(-0.15), pytest.approx(0.15))


def test_range_width_holds_half_of_new_results() -> None:
    rng = random.Random(7)  # noqa: S311  # test data, not secrets
    values = [(i, "gmv", rng.gauss(0, 0.3)) for i in range(400)]
    low, high = loo_residual_quartiles(values)
    fresh = [rng.gauss(0, 0.3) for _ in range(2000)]
    center = statistics.median(v for _, _, v in values)
    inside = sum(center + low <= v <= center + high for v in fresh) / len(fresh)
    assert inside == pytest.approx(0.5, abs=0.05)


def _hit_rows(
    rng: random.Random, effect: dict[str, float], n: int = 400
) -> tuple[list[PriorRow], list[float], list[int]]:
    """Target metrics of n/4 campaigns: ambition uniform in ±0.5, a quarter without baseline."""
    rows = []
    for i in range(n):
        ambition = None if i % 4 == 3 else rng.uniform(-0.5, 0.5)
        logit = effect.get("ambition", 0.0) * (ambition or 0.0)
        logit += effect.get("no_gain", 0.0) * (ambition is not None and ambition <= 0)
        hit = rng.random() < 1 / (1 + math.exp(-logit))
        rows.append(PriorRow(i // 4, "gmv", "gmv", "电商", None, None, hit, ambition))
    return rows, [0.5] * n, [r.campaign_id for r in rows]


def test_hit_model_follows_how_targets_were_set_and_stays_near_zero_without_an_effect() -> None:
    rng = random.Random(3)  # noqa: S311  # test data, not secrets
    steep = fit_hit_model(*_hit_rows(rng, {"ambition": 3.0}))
    # The slope and the no-gain step share the effect; the probabilities follow the truth.
    assert steep.probability(0.5, 0.4) == pytest.approx(1 / (1 + math.exp(-1.2)), abs=0.1)
    assert steep.probability(0.5, -0.4) == pytest.approx(1 / (1 + math.exp(1.2)), abs=0.1)
    no_gain = fit_hit_model(*_hit_rows(rng, {"no_gain": -2.0}))
    assert no_gain.coefficients[1] == pytest.approx(-2.0, abs=0.8)
    assert no_gain.probability(0.5, -0.05) == pytest.approx(1 / (1 + math.exp(2.0)), abs=0.08)
    assert no_gain.probability(0.5, 0.05) == pytest.approx(0.5, abs=0.08)
    flat = fit_hit_model(*_hit_rows(rng, {}))
    assert max(abs(c) for c in flat.coefficients) < 0.6
    assert flat.penalty is not None
    assert flat.penalty >= 3.0  # cross-validation restrains it
    assert flat.probability(0.64, None) == pytest.approx(0.64, abs=0.08)


def test_hit_model_needs_enough_rows_and_campaigns() -> None:
    rows, rates, groups = _hit_rows(random.Random(4), {"ambition": 3.0}, n=12)  # noqa: S311
    assert fit_hit_model(rows, rates, groups) == HitModel()
    assert HitModel().probability(0.37, 0.5) == 0.37  # no model: the base rate unchanged
    one_campaign = fit_hit_model(*_hit_rows(random.Random(5), {}, n=40)[:2], [1] * 40)  # noqa: S311
    assert one_campaign == HitModel()


def test_hit_features_tell_a_target_asking_no_gain_from_a_modest_one() -> None:
    assert hit_features(None) == (0.0, 0.0, 1.0)
    assert hit_features(0.0) == (0.0, 1.0, 0.0)  # target at the baseline
    assert hit_features(-3.0) == (-1.0, 1.0, 0.0)  # clipped
    assert hit_features(0.1) == (0.1, 0.0, 0.0)


def test_a_rows_base_rate_for_the_hit_model_leaves_its_own_campaign_out() -> None:
    rows = [row(1, "gmv", "gmv", True), row(1, "gmv", "gmv", True), row(2, "gmv", "gmv", False)]
    strength = 4.0
    rates = _held_out_base_rates(rows, strength)
    # Campaign 1 sees only campaign 2's miss; campaign 2 sees campaign 1's two hits.
    overall_1 = (0 + 0.5) / (1 + 1)
    key_1 = (0 + strength * overall_1) / (1 + strength)
    assert rates[0] == pytest.approx((0 + strength * key_1) / (1 + strength))
    overall_2 = (2 + 0.5) / (2 + 1)
    key_2 = (2 + strength * overall_2) / (2 + strength)
    assert rates[2] == pytest.approx((2 + strength * key_2) / (2 + strength))


def test_rows_are_scale_free_and_oriented() -> None:
    rows = rows_of(
        [
            (1, "电商", "gmv", "成交额", "亿元", 1.0, 1.2, 1.5),
            (1, "电商", "gmv", "CAC", "元", 50.0, 40.0, 50.0),  # cost above target: a miss
            (2, "电商", "gmv", "老客惊喜度", "分", None, 8.0, 9.0),  # not in the catalog
        ]
    )
    assert [r.key for r in rows] == ["gmv", "cac"]
    assert rows[0].log_attainment == pytest.approx(math.log(1.5 / 1.2))
    assert rows[0].ambition == pytest.approx(math.log(1.2))
    assert rows[1].log_attainment == pytest.approx(-math.log(50 / 40))
    assert rows[1].hit is False
    assert rows[1].ambition == pytest.approx(math.log(50 / 40))


def test_corpus_prior_reads_completed_campaigns_and_leaves_out_the_excluded(
    app: Flask, client: FlaskClient
) -> None:
    ids = []
    for i, actual in enumerate((13.0, 9.0, 12.5)):
        metric = {"name": "转化率", "unit": "%", "baseline": 8.0, "target": 12.0, "actual": actual}
        response = client.post(
            "/api/v1/campaigns",
            json=campaign_payload(external_id=f"p{i}", metrics=[metric]),
        )
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    planned = campaign_payload(external_id="planned", status="planned")
    planned["metrics"] = [{"name": "转化率", "unit": "%", "target": 12.0}]
    assert client.post("/api/v1/campaigns", json=planned).status_code == 201
    with app.app_context():
        everything = corpus_prior()
        assert everything.overall.n == 3  # the planned campaign has no outcome
        assert corpus_prior() is everything  # cached until the library changes
        without = corpus_prior(exclude={ids[1]})
        assert without.overall.n == 2
        assert without.by_key["conversion_rate"].n == 2


def test_center_strength_is_linear_in_the_rows_of_a_large_library() -> None:
    # Two neighbourhoods of 20,000 results each (a 10k-campaign library has such groups);
    # recomputing a group's mean for every value took minutes here.
    rng = random.Random(9)  # noqa: S311  # test data, not secrets
    groups = [[rng.gauss(shift, 0.2) for _ in range(20_000)] for shift in (-0.3, 0.3)]
    started = time.perf_counter()
    strength = fit_center_strength(groups)
    assert time.perf_counter() - started < 2.0
    assert strength == pytest.approx(STRENGTH_BOUNDS[0])  # the groups really differ
