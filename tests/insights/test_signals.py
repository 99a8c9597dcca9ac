"""Warning rules on hand-made metrics, at and around each threshold; thresholds as settings."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.insights import signals
from kb.insights.signals import SignalThresholds, evaluate, signal_settings
from kb.searching.indexer import get_indexes
from search.keyword import SearchFilters
from tests.factories import campaign_payload


def m(
    name: str,
    baseline: float | None = None,
    target: float | None = None,
    actual: float | None = None,
    unit: str = "",
) -> dict[str, Any]:
    """Return a metric as the rules read it (the catalog key comes from the name)."""
    return {"name": name, "unit": unit, "baseline": baseline, "target": target, "actual": actual}


def codes(metrics: list[dict[str, Any]], **options: Any) -> list[str]:
    return [s.code for s in evaluate(metrics, **options)]


# --- data bubble: traffic lift ≥ 10 × the best value lift, and traffic up ≥ 100 % ----------


def test_bubble_fires_on_the_issue_example_and_says_why_with_the_numbers() -> None:
    (signal,) = evaluate([m("观看人次", 100, None, 420), m("GMV", 1000, None, 1080)])
    assert signal.code == "data_bubble"
    assert signal.severity == "high"
    assert signal.explanation == (
        "观看人次较基线 +320%，而 GMV 仅 +8%：流量增长没有转化为成交（数据泡沫）"
    )
    assert "10 倍" in signal.rule
    assert "100%" in signal.rule
    assert signal.metrics == ("观看人次", "GMV")


@pytest.mark.parametrize(
    ("traffic_actual", "value_actual", "fires"),
    [
        (200, 110, True),  # +100 % vs +10 %: exactly 10 ×, exactly the minimum
        (200, 110.01, False),  # value +10.01 %: traffic is just under 10 ×
        (199.9, 100, False),  # traffic +99.9 %: under the minimum rise, however flat value is
        (200, 100, True),  # value flat
        (200, 95, True),  # value down
        (1100, 200, True),  # +1000 % vs +100 %
        (1099, 200, False),
    ],
)
def test_bubble_threshold(traffic_actual: float, value_actual: float, fires: bool) -> None:
    found = codes([m("曝光量", 100, None, traffic_actual), m("订单量", 100, None, value_actual)])
    assert ("data_bubble" in found) is fires


def test_bubble_compares_the_biggest_traffic_rise_with_the_best_value_rise() -> None:
    metrics = [
        m("UV", 100, None, 150),
        m("观看人次", 100, None, 420),
        m("GMV", 100, None, 108),
        m("订单量", 100, None, 140),  # orders kept pace: +320 % is only 8 × +40 %
    ]
    assert "data_bubble" not in codes(metrics)
    (bubble,) = evaluate(metrics[:3])
    assert bubble.metrics == ("观看人次", "GMV")


def test_bubble_says_when_value_fell() -> None:
    (signal,) = evaluate([m("播放量", 10, None, 40), m("付费用户数", 100, None, 90)])
    assert "而 付费用户数 反而 -10%" in signal.explanation


@pytest.mark.parametrize(
    "metrics",
    [
        [m("观看人次", 100, None, 900)],  # nothing to compare with
        [m("观看人次", None, None, 900), m("GMV", 100, None, 101)],  # no traffic baseline
        [m("观看人次", 100, None, 900), m("GMV", None, None, 101)],  # no value baseline
        [m("直播间热度", 100, None, 900), m("GMV", 100, None, 101)],  # not in the catalog
    ],
)
def test_bubble_needs_a_traffic_and_a_value_metric_with_baselines(
    metrics: list[dict[str, Any]],
) -> None:
    assert "data_bubble" not in codes(metrics)


def test_bubble_thresholds_are_settings() -> None:
    metrics = [m("观看人次", 100, None, 300), m("GMV", 100, None, 130)]  # +200 % vs +30 %
    assert "data_bubble" not in codes(metrics)
    assert "data_bubble" in codes(metrics, thresholds=SignalThresholds(bubble_ratio=5))
    looser = SignalThresholds(bubble_ratio=5, bubble_min_traffic_pct=250)
    assert "data_bubble" not in codes(metrics, thresholds=looser)


# --- attainment of a target below 80 % (completed campaigns) --------------------------------


@pytest.mark.parametrize(
    ("metric", "fires"),
    [
        (m("GMV", None, 100, 80), False),  # exactly 80 %
        (m("GMV", None, 100, 79.99), True),
        (m("获客成本", None, 40, 50), False),  # lower is better: 40 / 50 = 80 %
        (m("获客成本", None, 40, 50.01), True),
        (m("复购率", None, 30, None), False),  # no actual yet
        (m("老客惊喜度", None, 10, 7), True),  # not catalogued: judged higher-is-better, as shown
    ],
)
def test_attainment_threshold(metric: dict[str, Any], fires: bool) -> None:
    assert ("low_attainment" in codes([metric])) is fires


def test_attainment_judges_the_key_metric_only() -> None:
    # No goal type, no choice: the key metric is the first with a target.
    (signal,) = evaluate([m("ROI", 3.8, 3.5, 2.1, "倍"), m("退货率", 9.5, 10, 16.8, "%")])[:1]
    assert signal.code == "low_attainment"
    assert signal.explanation == (
        "主要指标 ROI 达成率 60%，低于 80% 的预警线（目标 3.5 倍，实际 2.1 倍）"
    )
    assert signal.metrics == ("ROI",)
    lower = evaluate([m("退货率", 9.5, 10, 16.8, "%")])
    assert lower[0].explanation.endswith("（目标 10%，实际 16.8%，越低越好）")


def test_attainment_follows_the_goal_type_and_the_authors_choice() -> None:
    # 观看人次 far above target, GMV at 77 %: a GMV campaign missed.
    metrics = [m("观看人次", 300, 600, 1260, "万"), m("GMV", 1430, 2000, 1545, "万元")]
    (signal,) = [s for s in evaluate(metrics, goal_type="gmv") if s.code == "low_attainment"]
    assert signal.metrics == ("GMV",)
    # A brand campaign is judged by its exposure, which beat its target.
    assert "low_attainment" not in codes(metrics, goal_type="brand")
    # The author's choice beats the goal type.
    chosen = [{**metrics[0], "key": True}, metrics[1]]
    assert "low_attainment" not in codes(chosen, goal_type="gmv")
    # A secondary metric that missed is not a warning of its own.
    assert "low_attainment" not in codes([m("GMV", None, 100, 120), m("ROI", None, 3, 1)])


@pytest.mark.parametrize(("actual", "severity"), [(60, "high"), (60.5, "medium"), (79, "medium")])
def test_attainment_is_high_when_twice_as_far_below_as_allowed(
    actual: float, severity: str
) -> None:
    (signal,) = evaluate([m("GMV", None, 100, actual)])
    assert signal.severity == severity


def test_attainment_is_not_judged_before_the_campaign_ends() -> None:
    metrics = [m("GMV", None, 100, 10), m("核销率", None, 30, 12, "%")]
    found = evaluate(metrics, finished=False)
    assert [s.code for s in found] == ["low_redemption"]
    assert found[0].explanation.endswith("（活动未结束，数据仍在变化）")


def test_attainment_threshold_is_a_setting() -> None:
    metrics = [m("GMV", None, 100, 85)]
    assert codes(metrics) == []
    assert codes(metrics, thresholds=SignalThresholds(attainment_min_pct=90)) == ["low_attainment"]


# --- acquisition / conversion cost up more than 20 % over baseline --------------------------


@pytest.mark.parametrize(
    ("name", "actual", "fires"),
    [
        ("获客成本", 60, False),  # exactly +20 %
        ("获客成本", 60.01, True),
        ("CAC", 70, True),
        ("CPA", 45, False),  # cost fell: good
        ("獲客成本", 61, True),  # Traditional
        ("投放费用", 90, False),  # not a catalogued cost
    ],
)
def test_cost_rise_threshold(name: str, actual: float, fires: bool) -> None:
    assert ("cost_rise" in codes([m(name, 50, None, actual, "元")])) is fires


def test_cost_rise_explains_with_the_numbers() -> None:
    (signal,) = evaluate([m("获客成本", 41, None, 56.6, "元")])
    assert signal.explanation.startswith(
        "获客成本较基线上升 38%（41 元 → 56.6 元），超过 20% 的预警线"
    )
    assert signal.severity == "medium"
    (worse,) = evaluate([m("获客成本", 50, None, 70, "元")])
    assert worse.severity == "high"  # +40 %: twice the line
    assert codes([m("获客成本", 50, None, 70)], thresholds=SignalThresholds(cost_rise_pct=40)) == []


# --- return or complaint rate worse than baseline --------------------------------------------


@pytest.mark.parametrize(
    ("name", "baseline", "actual", "fires"),
    [
        ("退货率", 5.0, 5.0, False),  # equal to baseline
        ("退货率", 5.0, 5.01, True),
        ("退货率", 5.0, 4.0, False),  # better
        ("投诉率", 0.2, 0.3, True),
        ("退款率", 3.0, 3.1, True),  # an alias of 退货率
        ("差评率", 1.0, 3.0, False),  # not catalogued
    ],
)
def test_risk_threshold(name: str, baseline: float, actual: float, fires: bool) -> None:
    assert ("risk_worse" in codes([m(name, baseline, None, actual, "%")])) is fires


def test_risk_tolerance_and_severity() -> None:
    metrics = [m("退货率", 10, None, 11, "%")]  # +10 % of the baseline
    (signal,) = evaluate(metrics)
    assert signal.severity == "medium"
    assert signal.explanation.startswith("退货率比基线差：10% → 11%（变差 10%）")
    assert codes(metrics, thresholds=SignalThresholds(risk_rise_pct=10)) == []
    assert codes(metrics, thresholds=SignalThresholds(risk_rise_pct=9.9)) == ["risk_worse"]
    (high,) = evaluate([m("退货率", 10, None, 15, "%")])
    assert high.severity == "high"


# --- coupon redemption far below issue --------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "fires"),
    [
        (m("核销率", None, None, 20, "%"), False),
        (m("核销率", None, None, 19.99, "%"), True),
        (m("券核销率", None, None, 0.18), True),  # a fraction without a unit: 18 %
        (m("核销率", None, None, 0.25), False),  # 25 %
        (m("核销率", None, None, 0.5, "%"), True),  # 0.5 %, written with its unit
        (m("優惠券核銷率", None, None, 12, "%"), True),
        (m("核销率", None, None, 12, "张"), False),  # not a percentage: cannot judge
    ],
)
def test_redemption_rate_threshold(metric: dict[str, Any], fires: bool) -> None:
    assert ("low_redemption" in codes([metric])) is fires


@pytest.mark.parametrize(("redeemed", "fires"), [(19_999, True), (20_000, False)])
def test_redemption_from_coupons_issued_and_redeemed(redeemed: int, fires: bool) -> None:
    metrics = [m("发券量", None, None, 100_000, "张"), m("核销量", None, None, redeemed, "张")]
    found = evaluate(metrics)
    assert ([s.code for s in found] == ["low_redemption"]) is fires
    if fires:
        assert found[0].explanation.startswith("发券 10 万张，核销 2 万张（20%）")
        assert found[0].metrics == ("发券量", "核销量")


def test_redemption_counts_in_english_and_not_without_both() -> None:
    english = [m("Coupons issued", actual=5000), m("Coupons redeemed", actual=400)]
    assert codes(english) == ["low_redemption"]
    assert codes([m("发券量", actual=5000)]) == []  # nothing redeemed reported: cannot judge
    assert codes([m("领券数", actual=0), m("核销数", actual=0)]) == []  # none issued


def test_redemption_severity_and_setting() -> None:
    (half,) = evaluate([m("核销率", None, None, 10, "%")])
    assert half.severity == "high"
    assert codes(
        [m("核销率", None, None, 25, "%")], thresholds=SignalThresholds(redemption_min_pct=30)
    )


# --- settings ---------------------------------------------------------------------------------


def test_settings_and_thresholds_agree_on_names_and_defaults() -> None:
    defaults = SignalThresholds()
    assert set(defaults.by_setting()) == set(signal_settings())
    for name, (default, description) in signal_settings().items():
        assert defaults.by_setting()[name] == default
        assert description
    with pytest.raises(TypeError, match="unknown signal settings"):
        SignalThresholds(no_such_line=1.0)


def test_thresholds_come_from_the_app_config(insights_app: Flask) -> None:
    insights_app.config["SIGNAL_COST_RISE_PCT"] = "35"  # an environment variable may be text
    with insights_app.app_context():
        limits = signals.current_thresholds()
    assert limits["cost_rise_pct"] == 35.0
    assert limits["attainment_min_pct"] == 80.0


# --- stored campaigns, the API and the search filter -----------------------------------------


def _create(**overrides: Any) -> int:
    return services.create_campaign(validate_campaign(campaign_payload(**overrides))).id


def test_campaigns_with_signals_judges_live_campaigns_from_the_database(
    insights_app: Flask,
) -> None:
    bubble = [
        {"name": "观看人次", "baseline": 100.0, "target": None, "actual": 420.0},
        {"name": "GMV", "unit": "万元", "baseline": 100.0, "target": 100.0, "actual": 108.0},
    ]
    clean = [{"name": "GMV", "unit": "万元", "baseline": 100.0, "target": 100.0, "actual": 120.0}]
    with insights_app.app_context():
        bubbly = _create(external_id="s-1", metrics=bubble)
        costly = _create(external_id="s-2")  # the factory's 获客成本 40 → 52: +30 %
        quiet = _create(external_id="s-3", metrics=clean)
        trashed = _create(external_id="s-4", metrics=bubble)
        services.trash_campaign(trashed)
        running = _create(external_id="s-5", status="running", metrics=[
            {"name": "GMV", "baseline": 100.0, "target": 200.0, "actual": 20.0},
        ])  # fmt: skip

        assert signals.campaigns_with_signals() == {bubbly, costly}
        assert signals.campaigns_with_signals({"data_bubble"}) == {bubbly}
        assert signals.campaigns_with_signals({"cost_rise", "data_bubble"}) == {bubbly, costly}
        assert signals.campaigns_with_signals({"risk_worse"}) == set()
        assert quiet not in signals.campaigns_with_signals()
        assert running not in signals.campaigns_with_signals()  # not finished: not missed yet

        # The allow-list filter the search wires the ``signal`` parameter to.
        keyword = get_indexes().keyword
        allowed = frozenset(signals.campaigns_with_signals({"data_bubble"}))
        listing = keyword.search("", filters=SearchFilters(ids=allowed), limit=10)
        assert [hit.campaign_id for hit in listing.hits] == [bubbly]
        found = keyword.search("召回", filters=SearchFilters(ids=allowed), limit=10)
        assert [hit.campaign_id for hit in found.hits] == [bubbly]
        none = keyword.search("", filters=SearchFilters(ids=frozenset()), limit=10)
        assert none.total == 0
        both = SearchFilters(ids=frozenset({bubbly, costly}), status="completed")
        assert keyword.matching_ids(both) == {bubbly, costly}


def test_signals_api_and_partial(insights_app: Flask, insights_client: FlaskClient) -> None:
    with insights_app.app_context():
        campaign_id = _create(external_id="s-6")
    body = insights_client.get(f"/api/v1/campaigns/{campaign_id}/signals").get_json()
    # Its key metric 成交额 beat its target (113 %); 获客成本 missed but is no key metric.
    assert [s["code"] for s in body["signals"]] == ["cost_rise"]
    assert body["thresholds"]["SIGNAL_COST_RISE_PCT"] == 20.0
    assert body["signals"][0]["label"] == "获客成本上升"
    missing = insights_client.get("/api/v1/campaigns/9999/signals")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"

    with insights_app.test_request_context():
        from flask import render_template_string

        from kb.campaigns.services import get_campaign

        found = signals.campaign_signals(get_campaign(campaign_id))
        html = render_template_string('{% include "insights/_signals.html" %}', signals=found)
        empty = render_template_string('{% include "insights/_signals.html" %}', signals=[])
    assert "数据预警" in html
    assert "获客成本较基线上升 30%（40 元 → 52 元）" in html
    assert 'data-signal="cost_rise"' in html
    assert "规则：获客成本 / 转化成本较基线上升超过 20%" in html
    assert empty.strip() == ""
