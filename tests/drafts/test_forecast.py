"""Forecasts from analogs: scale-free ratios, direction, units, names, weights, too few cases."""

from __future__ import annotations

import math
import statistics

import pytest

from kb.drafts.forecast import (
    Analog,
    DraftContext,
    DraftMetric,
    PastMetric,
    forecast,
    weighted_quantile,
)
from kb.drafts.forecast_text import format_value
from kb.drafts.priors import BaseRate, HitModel, Prior, RatioPrior

# A prior with round numbers, so expected values can be computed by hand: residual quartiles
# of ±0.1 (attainment) and ±0.2 (lift) in log ratio, centers not pulled toward the corpus,
# base rate 0.6 from 40 metrics, a beta prior worth 10 campaigns.
PRIOR = Prior(
    overall=BaseRate(0.6, 40),
    by_key={"gmv": BaseRate(0.5, 20)},
    by_key_goal={("gmv", "gmv"): BaseRate(0.4, 10)},
    strength=10.0,
    attainment=RatioPrior({"gmv": 0.0}, 0.0, 0.0, (-0.1, 0.1)),
    lift=RatioPrior({}, 0.0, 0.0, (-0.2, 0.2)),
)


def analog(
    campaign_id: int,
    *metrics: PastMetric,
    similarity: float = 1.0,
    industry: str | None = None,
) -> Analog:
    return Analog(campaign_id, f"活动{campaign_id}", similarity, metrics, industry=industry)


def gmv(
    actual: float, target: float | None, unit: str = "万元", baseline: float | None = None
) -> PastMetric:
    return PastMetric("GMV", unit, baseline, target, actual)


def test_weighted_quantile_equals_the_median_for_equal_weights() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert weighted_quantile(values, [1.0] * 5, 0.5) == statistics.median(values)
    assert weighted_quantile([1.0, 2.0], [1.0, 1.0], 0.5) == 1.5
    # A heavy case pulls the median toward itself: cumulative midpoints 0.5/12, 1.5/12, 7/12.
    expected = 2 + (0.5 - 1.5 / 12) / (7 / 12 - 1.5 / 12)
    assert weighted_quantile([1.0, 2.0, 3.0], [1.0, 1.0, 10.0], 0.5) == pytest.approx(expected)
    with pytest.raises(ValueError, match="weights"):
        weighted_quantile([1.0], [0.0], 0.5)


def test_forecast_is_scale_free_against_the_drafts_own_target() -> None:
    # 全站双11-sized analogs (targets of 1 亿) that did 80–120 % of their own target.
    attainments = (0.8, 0.9, 1.0, 1.1, 1.2)
    analogs = [analog(i, gmv(10_000 * a, 10_000)) for i, a in enumerate(attainments, start=1)]
    draft = DraftMetric("GMV", "万元", baseline=None, target=500)
    result = forecast([draft], analogs, prior=PRIOR).metrics[0]
    assert result.enough
    assert result.basis == "target"
    assert result.median == pytest.approx(500)  # never near the analogs' 1 亿
    assert (result.p25, result.p75) == (
        pytest.approx(500 * math.exp(-0.1)),
        pytest.approx(500 * math.exp(0.1)),
    )
    assert result.ratio_median == pytest.approx(100)
    assert result.summary.startswith(
        "按 5 个相似活动相对各自目标的表现推算，预计落在 452.4 万元–552.6 万元"
    )
    assert result.headline.startswith("预计 452.4 万元–552.6 万元")
    assert [c.achieved for c in result.cases][:2] == ["达成目标的 80%", "达成目标的 90%"]


def test_the_analogs_median_is_shrunk_toward_the_metrics_corpus_median() -> None:
    analogs = [analog(i, gmv(120, 100)) for i in range(1, 6)]  # five at 120 %
    # The corpus says GMV lands at 100 % of target, worth 5 analogs: halfway in log ratio.
    prior = Prior(
        **{**_fields(PRIOR), "attainment": RatioPrior({"gmv": 0.0}, 0.0, 5.0, (-0.1, 0.1))}
    )
    (result,) = forecast([DraftMetric("GMV", "万元", None, 100)], analogs, prior=prior).metrics
    assert result.median == pytest.approx(100 * math.exp(math.log(1.2) / 2))


def test_lower_is_better_metrics_turn_the_ratio_round() -> None:
    # Each analog's CAC came in at target / 1.25: better than planned.
    analogs = [analog(i, PastMetric("获客成本", "元", None, 50, 40)) for i in range(1, 6)]
    result = forecast([DraftMetric("CAC", "元", None, 30)], analogs, prior=PRIOR).metrics[0]
    assert result.median == pytest.approx(30 / 1.25)
    assert result.p25 is not None
    assert result.p75 is not None
    assert result.p25 < result.median < result.p75
    assert result.ratio_median == pytest.approx(125)
    assert result.hit_n == 5


def test_without_a_target_the_baseline_and_lift_are_used() -> None:
    analogs = [analog(i, gmv(120, None, baseline=100)) for i in range(1, 6)]
    draft = DraftMetric("GMV", "万元", baseline=2000, target=None)
    result = forecast([draft], analogs, prior=PRIOR).metrics[0]
    assert result.basis == "baseline"
    assert result.median == pytest.approx(2400)
    assert result.p75 == pytest.approx(2400 * math.exp(0.2))
    assert result.hit_probability is None  # no target to hit
    assert "相对各自基线" in result.summary


def test_below_five_cases_list_them_and_say_so() -> None:
    analogs = [analog(i, gmv(a, 100)) for i, a in ((1, 90), (2, 130), (3, 110))]
    result = forecast([DraftMetric("GMV", "万元", None, 800)], analogs, prior=PRIOR).metrics[0]
    assert not result.enough
    assert (result.p25, result.median, result.p75) == (None, None, None)
    assert result.n == 3
    assert result.case_ids == (1, 2, 3)
    assert "样本不足" in result.summary
    assert "活动1：达成目标的 90%" in result.summary
    assert "3 个相似活动中有 2 个达成了目标" in result.summary
    # Hit rate still shown, shrunk toward the base rate: (2 + 10 × 0.5) / (3 + 10).
    assert result.hit_probability == pytest.approx((2 + 10 * 0.5) / 13)
    assert result.hit_rate == pytest.approx(2 / 3)


def test_too_few_analogs_of_the_metric_pool_metrics_of_the_same_kind() -> None:
    # Two analogs measured K值, four others a 转化率 (both rates): the range rests on six.
    k_value = [analog(i, PastMetric("K值", "", 0.2, 0.5, 0.5 * a)) for i, a in ((1, 1.1), (2, 0.9))]
    conversion = [
        analog(i, PastMetric("转化率", "%", 2, 4, 4 * a), PastMetric("GMV", "万元", None, 100, 50))
        for i, a in ((3, 0.8), (4, 1.0), (5, 1.2), (6, 1.3))
    ]
    family_prior = RatioPrior({}, 0.0, 0.0, (-0.1, 0.1), {"rate": 0.0}, (-0.3, 0.3))
    prior = Prior(**{**_fields(PRIOR), "attainment": family_prior})
    draft = [DraftMetric("K值", "", 0.3, 0.6)]
    (result,) = forecast(draft, k_value + conversion, prior=prior).metrics
    assert result.enough
    assert (result.family, result.family_n, result.n) == ("比率类", 6, 2)
    center = statistics.median(math.log(a) for a in (1.1, 0.9, 0.8, 1.0, 1.2, 1.3))
    assert result.median == pytest.approx(0.6 * math.exp(center))
    assert result.p75 == pytest.approx(0.6 * math.exp(center + 0.3))  # the kind's width
    assert result.case_ids == (1, 2, 3, 4, 5, 6)
    assert result.cases[2].achieved == "转化率 达成目标的 80%"  # a pooled case names its metric
    assert result.summary.startswith(
        "测量过该指标的相似活动只有 2 个，按 6 个相似活动的比率类指标相对各自目标的表现推算"
    )
    assert "（按比率类指标）" in result.headline
    # No analog measured the metric at all: said so in words, not "只有 0 个" or "(n=0)".
    more = [
        analog(7, PastMetric("转化率", "%", 2, 4, 3.6)),
        analog(8, PastMetric("转化率", "%", 2, 4, 4.4)),
    ]
    (none_own,) = forecast(draft, conversion + more, prior=prior).metrics
    assert none_own.enough
    assert (none_own.family, none_own.n, none_own.with_target_n) == ("比率类", 0, 0)
    assert none_own.summary.startswith(
        "没有相似活动测量过该指标，按 6 个相似活动的比率类指标相对各自目标的表现推算"
    )
    assert none_own.headline.endswith("（没有设了该指标目标的相似活动，按历史达成率估计）")
    assert "n=" not in none_own.summary + none_own.headline
    assert "只有 0 个" not in none_own.summary
    assert "2 个相似活动中有 1 个达成了目标" in result.summary  # hit counts: the metric's own
    # Fewer than five of the kind too: still 样本不足, the metric's own cases listed.
    (few,) = forecast(draft, k_value + conversion[:2], prior=prior).metrics
    assert not few.enough
    assert few.family is None
    assert "样本不足" in few.summary
    # A prior without a calibrated width for the kind does not pool.
    (unpooled,) = forecast(draft, k_value + conversion, prior=PRIOR).metrics
    assert not unpooled.enough


def test_hit_probability_is_shrunk_toward_the_metric_and_goal_base_rate() -> None:
    analogs = [analog(i, gmv(120, 100)) for i in range(1, 6)]  # all five hit
    draft = [DraftMetric("GMV", "万元", None, 100)]
    by_goal = forecast(draft, analogs, context=DraftContext(goal_type="gmv"), prior=PRIOR)
    (result,) = by_goal.metrics
    assert result.base_rate == 0.4
    assert result.hit_probability == pytest.approx((5 + 10 * 0.4) / 15)
    assert "已向GMV在GMV类活动中的历史达成率 40%（10 个指标）收缩" in result.summary
    assert f"达成概率约 {(5 + 4) / 15:.0%}（依据 5 个设了目标的相似活动）" in result.headline
    assert "n=" not in result.summary
    other_goal = forecast(draft, analogs, context=DraftContext(goal_type="brand"), prior=PRIOR)
    assert other_goal.metrics[0].base_rate == 0.5  # the metric's rate over every goal
    assert "已向GMV的历史达成率 50%（20 个指标）收缩" in other_goal.metrics[0].summary


def test_a_target_set_below_baseline_moves_the_base_rate_by_the_fitted_model() -> None:
    model = HitModel(0.1, (2.0, -1.0, 0.3), penalty=1.0)
    prior = Prior(**{**_fields(PRIOR), "hit_model": model})
    draft = DraftMetric("GMV", "万元", baseline=100, target=90)  # ambition ln 0.9, no gain
    (result,) = forecast([draft], [], prior=prior).metrics
    logit = math.log(0.5 / 0.5) + 0.1 + 2.0 * math.log(0.9) - 1.0
    start = 1 / (1 + math.exp(-logit))
    assert result.hit_probability == pytest.approx(start)
    assert f"目标定为基线的 90%，按历史上目标高低与达成的关系，起点调为 {start:.0%}" in (
        result.summary
    )
    unjudged = DraftMetric("GMV", "万元", target=90)  # no baseline: the third feature
    (result,) = forecast([unjudged], [], prior=prior).metrics
    start = 1 / (1 + math.exp(-(0.1 + 0.3)))
    assert result.hit_probability == pytest.approx(start)
    assert f"草案没有基线，按历史上没有基线的目标的达成情况，起点调为 {start:.0%}" in (
        result.summary
    )


def test_ratio_units_are_one_unit_and_other_dimensions_are_skipped() -> None:
    analogs = [
        analog(1, PastMetric("ROI", "倍", None, 3.0, 3.3)),
        analog(2, PastMetric("ROI", ":1", None, 2.0, 2.2)),
        analog(3, PastMetric("ROI", "", None, 4.0, 4.4)),
        analog(4, PastMetric("ROI", "%", None, 300, 330)),
        analog(5, PastMetric("ROI", "元", None, 3.0, 3.3)),  # not a ratio: skipped
        analog(6, PastMetric("投入产出比", "倍", None, 1.0, 1.1)),
    ]
    (result,) = forecast([DraftMetric("ROI", "", None, 5.0)], analogs, prior=PRIOR).metrics
    assert result.case_ids == (1, 2, 3, 4, 6)
    assert result.unit_skipped == 1
    assert result.median == pytest.approx(5.5)
    assert "另有 1 个相似活动因单位不同未计入" in result.summary


def test_names_outside_the_catalog_match_by_normalized_name_with_a_confidence() -> None:
    analogs = [analog(i, PastMetric("轉換率", "%", None, 10, 11)) for i in range(1, 6)]
    (result,) = forecast([DraftMetric("私教课转化率", "%", None, 20)], analogs, prior=PRIOR).metrics
    assert result.key == "conversion_rate"
    assert result.match_confidence is not None
    assert 0.5 < result.match_confidence < 1
    assert "按名称归为「转化率」" in result.summary
    assert result.median == pytest.approx(22)


def test_unknown_metric_is_not_forecast() -> None:
    (result,) = forecast([DraftMetric("老客惊喜度", "分", None, 80)], [], prior=PRIOR).metrics
    assert result.key is None
    assert not result.enough
    assert result.summary == "「老客惊喜度」不在指标目录中，也无法按名称或单位归类，不做预测。"


def test_a_name_outside_the_catalog_is_compared_with_the_same_name_and_says_how_sure() -> None:
    analogs = [
        analog(
            i,
            PastMetric("私域渗透率", "%", None, 10, 10 * a),
            PastMetric("GMV", "万元", None, 5, 9),
        )
        for i, a in enumerate((0.8, 0.9, 1.0, 1.1, 1.2), start=1)
    ]
    (result,) = forecast([DraftMetric("私域滲透率", "％", None, 20)], analogs, prior=PRIOR).metrics
    assert result.key == "~私域渗透率"
    assert result.enough
    assert result.n == 5  # the GMV rows are another metric, not pooled: five of the name itself
    assert result.median == pytest.approx(20)
    assert result.match_confidence == 0.4
    assert (
        "「私域滲透率」不在指标目录中，按单位与名称归为比率类（置信度 40%），"
        "只与其他活动中同名的指标直接比较" in result.summary
    )


def test_closer_analogs_weigh_more() -> None:
    same = [analog(i, gmv(130, 100), industry="美妆") for i in range(1, 4)]
    other = [analog(i, gmv(70, 100), industry="电商") for i in range(4, 7)]
    draft = [DraftMetric("GMV", "万元", None, 100)]
    near = forecast(draft, same + other, context=DraftContext(industry="美妆"), prior=PRIOR)
    far = forecast(draft, same + other, context=DraftContext(industry="电商"), prior=PRIOR)
    assert near.metrics[0].median == pytest.approx(130)
    assert far.metrics[0].median == pytest.approx(70)
    assert near.metrics[0].cases[0].weight > near.metrics[0].cases[-1].weight
    assert "权重最高的案例：活动1（达成目标的 130%）；活动2" in near.metrics[0].summary
    assert "权重最高的案例：活动4（达成目标的 70%）" in far.metrics[0].summary


def test_max_cases_keeps_the_most_similar() -> None:
    analogs = [analog(i, gmv(100 + i, 100)) for i in range(1, 21)]
    (result,) = forecast(
        [DraftMetric("GMV", "万元", None, 100)], analogs, prior=PRIOR, max_cases=5
    ).metrics
    assert result.case_ids == (1, 2, 3, 4, 5)


def test_no_analogs_no_range_but_the_base_rate() -> None:
    (result,) = forecast([DraftMetric("GMV", "万元", None, 100)], [], prior=PRIOR).metrics
    assert result.n == 0
    assert result.hit_probability == 0.5
    assert result.summary.startswith("没有相似活动测量过该指标，不给区间")
    # Not "不做预测" followed by a probability: the line says where the 50 % comes from.
    assert result.headline == (
        "没有相似活动测量过该指标，不给区间，达成概率约 50%"
        "（没有设了该指标目标的相似活动，按历史达成率估计）"
    )


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (12_000, "万元", "1.2 亿元"),
        (5_000, "万元", "5000 万元"),
        (35_000, "元", "3.5 万元"),
        (86.5, "元", "86.5 元"),
        (3.5, "倍", "3.5 倍"),
        (12.46, "%", "12.5%"),
        (32.0, "%", "32%"),
        (18_400, "人", "1.84 万人"),
        (3_425.92, "人", "3,426 人"),  # a count in ones, not "3425.92 人"
        (2.5, "单", "2.5 单"),
        (123.46, "万元", "123.5 万元"),  # four significant digits, as every page writes
    ],
)
def test_amounts_are_written_in_wan_and_yi(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_one_forecast_per_draft_metric_in_order_and_bad_arguments() -> None:
    drafts = [DraftMetric("复购率"), DraftMetric("x"), DraftMetric("GMV")]
    assert [m.name for m in forecast(drafts, []).metrics] == ["复购率", "x", "GMV"]
    with pytest.raises(ValueError, match="min_cases"):
        forecast(drafts, [], min_cases=5, max_cases=4)


def _fields(prior: Prior) -> dict[str, object]:
    return {name: getattr(prior, name) for name in Prior.__dataclass_fields__}


def test_without_target_or_baseline_there_is_nothing_to_scale() -> None:
    analogs = [analog(i, gmv(120, 100)) for i in range(1, 6)]
    (result,) = forecast([DraftMetric("GMV", "万元")], analogs, prior=PRIOR).metrics
    assert (result.enough, result.median, result.hit_probability) == (False, None, None)
    assert result.n == 5
    assert result.summary.startswith("草案没有可用的目标或基线（需为正数）")
    assert "活动1：实际 120 万元，达成目标" in result.summary
