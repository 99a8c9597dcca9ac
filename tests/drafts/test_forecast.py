"""Forecasts from analogs: quartiles, hit rates, direction, units, too few cases, the cap."""

from __future__ import annotations

import statistics

import pytest

from kb.campaigns.metrics import assess, by_key
from kb.drafts.forecast import Analog, DraftMetric, forecast, quantile
from search.documents import MetricFact


def fact(key: str, actual: float | None, target: float | None = None) -> MetricFact:
    """Return a metric fact with attainment and hit computed the way the catalog does."""
    entry = by_key(key)
    direction = entry.direction if entry else "higher"
    outcome = assess(direction, None, target, actual)
    return MetricFact(
        key, key, direction, None, target, actual, outcome.attainment_pct, None, outcome.hit
    )


def analog(campaign_id: int, *facts: MetricFact, units: tuple[str, ...] | None = None) -> Analog:
    return Analog(
        campaign_id, f"活动 {campaign_id}", 1 / campaign_id, facts, units or ("%",) * len(facts)
    )


REPURCHASE = DraftMetric("复购率", "repurchase_rate", None, "%")


def test_quantile_interpolates_linearly_like_statistics_inclusive() -> None:
    values = [40.0, 10.0, 30.0, 20.0]
    assert [quantile(values, q) for q in (0.25, 0.5, 0.75)] == [17.5, 25.0, 32.5]
    assert [quantile(values, q) for q in (0.25, 0.5, 0.75)] == statistics.quantiles(
        values, n=4, method="inclusive"
    )
    assert quantile([7.0], 0.25) == 7.0
    assert (quantile(values, 0.0), quantile(values, 1.0)) == (10.0, 40.0)


def test_quartiles_hit_rate_and_attainment_by_hand() -> None:
    analogs = [
        analog(1, fact("repurchase_rate", 20, target=25)),  # attainment 80, missed
        analog(2, fact("repurchase_rate", 30, target=25)),  # 120, hit
        analog(3, fact("repurchase_rate", 40, target=20)),  # 200, hit
        analog(4, fact("repurchase_rate", 10)),  # no target
        analog(5, fact("gmv", 99)),  # another metric
    ]
    result = forecast([REPURCHASE], analogs).metrics[0]
    assert (result.n, result.enough, result.case_ids) == (4, True, [1, 2, 3, 4])
    assert (result.p25, result.median, result.p75) == (17.5, 25.0, 32.5)
    # attainments 80, 120, 200: position (3 - 1) × q
    assert (result.attainment_p25, result.attainment_median, result.attainment_p75) == (
        100.0, 120.0, 160.0,
    )  # fmt: skip
    assert (result.hit_n, result.with_target_n) == (2, 3)
    assert result.hit_rate == pytest.approx(2 / 3)
    assert result.share_meeting_target is None
    assert result.summary == (
        "4 个相似活动测量过复购率，其中 3 个设了目标、2 个达成；"
        "实际值中位数 25.0%（四分位 17.5%–32.5%）"
    )


def test_summary_when_every_case_had_a_target() -> None:
    analogs = [analog(i, fact("repurchase_rate", v, target=30)) for i, v in
               enumerate((28.0, 32.5, 36.1, 25.0), start=1)]  # fmt: skip
    result = forecast([REPURCHASE], analogs).metrics[0]
    assert result.summary.startswith("4 个相似活动中有 2 个达成了复购率目标；实际值中位数 30.2%")


@pytest.mark.parametrize(
    ("target", "share", "position"),
    [
        (35.0, 0.25, "高于 75% 的相似活动实际值"),
        (5.0, 1.0, "低于 75% 的相似活动实际值"),
        (20.0, 0.75, "在相似活动实际值的下四分位与中位数之间"),
        (25.0, 0.5, "在相似活动实际值的中位数与上四分位之间"),
    ],
)
def test_draft_target_against_the_range(target: float, share: float, position: str) -> None:
    analogs = [analog(i, fact("repurchase_rate", v)) for i, v in enumerate((10, 20, 30, 40), 1)]
    draft = DraftMetric("复购率", "repurchase_rate", target, "%")
    result = forecast([draft], analogs).metrics[0]
    assert result.share_meeting_target == share
    assert result.target_position == position
    assert result.target == target
    assert (
        f"草案目标 {target:.1f}%{position}，4 个相似活动中有 {share * 4:.0f} 个" in result.summary
    )


def test_lower_is_better_counts_actuals_at_or_below_the_target() -> None:
    analogs = [
        analog(i, fact("cac", v, target=50), units=("元",))
        for i, v in enumerate((40, 50, 60, 80), 1)
    ]
    draft = DraftMetric("获客成本", "cac", 50, "元")
    result = forecast([draft], analogs).metrics[0]
    assert result.share_meeting_target == 0.5  # 40 and 50
    assert (result.hit_n, result.with_target_n) == (2, 4)
    assert result.attainment_median == pytest.approx((50 / 50 * 100 + 50 / 60 * 100) / 2)


def test_units_convert_or_are_skipped() -> None:
    analogs = [
        analog(1, fact("gmv", 1.2), units=("亿元",)),
        analog(2, fact("gmv", 8000), units=("萬元",)),  # Traditional 萬
        analog(3, fact("gmv", 50_000_000), units=("元",)),
        analog(4, fact("gmv", 3000), units=("万美元",)),  # another currency: not comparable
        analog(5, fact("gmv", 900), units=("万 RMB",)),
        analog(6, fact("gmv", 7), units=("",)),
    ]
    result = forecast([DraftMetric("成交额", "gmv", None, "万元")], analogs).metrics[0]
    assert result.case_ids == [1, 2, 3, 5]
    assert result.unit_skipped == 2
    assert (result.p25, result.median, result.p75) == (3975.0, 6500.0, 9000.0)
    assert result.summary.endswith("（另有 2 个因单位不同未计入）")
    assert "实际值中位数 6,500.0 万元（四分位 3,975.0 万元–9,000.0 万元）" in result.summary


def test_percent_and_no_unit_are_the_same_for_rates_only() -> None:
    rate = [analog(i, fact("conversion_rate", 5.0), units=("",)) for i in (1, 2, 3)]
    found = forecast([DraftMetric("转化率", "conversion_rate", None, "%")], rate).metrics[0]
    assert found.n == 3
    count = [analog(i, fact("new_users", 5.0), units=("%",)) for i in (1, 2, 3)]
    found = forecast([DraftMetric("新增用户数", "new_users", None, "")], count).metrics[0]
    assert (found.n, found.unit_skipped) == (0, 3)


def test_an_analog_counts_once_with_its_first_usable_metric() -> None:
    both = analog(1, fact("gmv", None), fact("gmv", 10), fact("gmv", 99), units=("元",) * 3)
    result = forecast([DraftMetric("GMV", "gmv", None, "元")], [both], min_cases=1).metrics[0]
    assert (result.n, result.median) == (1, 10.0)


@pytest.mark.parametrize(
    ("count", "summary"),
    [
        (2, "只有 2 个相似活动测量过该指标，样本太少，不做预测"),
        (0, "没有相似活动测量过该指标，不做预测"),
    ],
)
def test_too_few_cases_give_no_forecast(count: int, summary: str) -> None:
    analogs = [analog(i, fact("repurchase_rate", 30, target=25)) for i in range(1, count + 1)]
    draft = DraftMetric("复购率", "repurchase_rate", 28, "%")
    result = forecast([draft], analogs).metrics[0]
    assert result.summary == summary
    assert not result.enough
    assert (result.p25, result.median, result.p75, result.hit_rate) == (None,) * 4
    assert result.share_meeting_target is None
    assert (result.n, result.hit_n, result.with_target_n) == (count, count, count)
    assert result.case_ids == list(range(1, count + 1))


def test_max_cases_keeps_the_nearest() -> None:
    analogs = [analog(i, fact("repurchase_rate", float(i))) for i in range(1, 21)]
    result = forecast([REPURCHASE], analogs, max_cases=5).metrics[0]
    assert result.case_ids == [1, 2, 3, 4, 5]
    assert result.median == 3.0
    assert forecast([REPURCHASE], analogs).metrics[0].n == 12


def test_unit_skips_are_counted_only_before_the_cap() -> None:
    analogs = [
        analog(1, fact("repurchase_rate", 1.0)),
        analog(2, fact("repurchase_rate", 2.0), units=("人",)),
        analog(3, fact("repurchase_rate", 3.0)),
        analog(4, fact("repurchase_rate", 4.0), units=("人",)),
    ]
    result = forecast([REPURCHASE], analogs, min_cases=1, max_cases=2).metrics[0]
    assert (result.case_ids, result.unit_skipped) == ([1, 3], 1)


def test_metric_without_catalog_key_is_not_forecast() -> None:
    analogs = [analog(i, fact("repurchase_rate", 30)) for i in (1, 2, 3)]
    result = forecast([DraftMetric("老客惊喜度", None, 80, "分")], analogs).metrics[0]
    assert result.summary == "「老客惊喜度」不在指标目录中，无法与历史活动对比，不做预测"
    assert (result.n, result.enough, result.case_ids, result.target) == (0, False, [], 80)


def test_one_forecast_per_draft_metric_in_order() -> None:
    drafts = [REPURCHASE, DraftMetric("x", None, None, ""), DraftMetric("GMV", "gmv", None, "")]
    assert [m.name for m in forecast(drafts, []).metrics] == ["复购率", "x", "GMV"]


def test_missing_units_mean_the_drafts_unit() -> None:
    analogs = [Analog(i, "t", 1.0, (fact("gmv", 10.0),)) for i in (1, 2, 3)]
    assert forecast([DraftMetric("GMV", "gmv", None, "万元")], analogs).metrics[0].n == 3


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="units"):
        Analog(1, "t", 1.0, (fact("gmv", 1.0),), ("元", "元"))
    with pytest.raises(ValueError, match="min_cases"):
        forecast([REPURCHASE], [], min_cases=5, max_cases=4)
