"""The forecast in words: the Chinese summary and headline a planner reads on the draft page.

Numbers are written as every page writes them (kb.web.rendering: amounts in 万/亿).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from kb.campaigns import metrics as catalog
from kb.drafts.priors import BaseRate
from kb.web import rendering

if TYPE_CHECKING:  # forecast.py imports this module
    from kb.drafts.forecast import MetricForecast


def format_value(value: float, unit: str) -> str:
    """Format a value in its unit, amounts in 万/亿 (12000 万元 → 1.20 亿元, 0.35 倍, 12.5%)."""
    dimension, scale = catalog.unit_dimension(unit)
    # Written as every page writes numbers (kb.web.rendering); the catalog names the dimension
    # of units it alone knows (百分比, 倍数).
    if dimension == "percent":
        return rendering.format_quantity(value, "%")
    if dimension == "ratio":
        return rendering.format_quantity(value, "倍")
    if dimension == "count" and scale == 1.0 and abs(value) >= 100:
        # Hundreds of people or orders are counted in ones: "3426 人", not "3425.92 人"
        # (fewer keep a decimal: 2.5 单 per order).
        value = round(value)
    return rendering.format_quantity(value, unit)


def with_summary(
    result: MetricForecast, scope: str, base: BaseRate, start: BaseRate, *, listed: int
) -> MetricForecast:
    """Return the forecast with its Chinese summary and one-line headline for the draft page."""
    n, unit = result.n, result.unit
    if result.enough and result.p25 is not None and result.median is not None:
        reference = "目标" if result.basis == "target" else "基线"
        span = f"{format_value(result.p25, unit)}–{format_value(result.p75 or 0.0, unit)}"
        rests_on = f"按 {n} 个相似活动相对各自{reference}的表现推算"
        if result.family is not None:
            own = f"测量过该指标的相似活动只有 {n} 个" if n else "没有相似活动测量过该指标"
            rests_on = (
                f"{own}，按 {result.family_n} 个相似活动的"
                f"{result.family}指标相对各自{reference}的表现推算"
            )
        first = (
            f"{rests_on}，预计落在 {span}"
            f"（中位 {format_value(result.median, unit)}，约为{reference}的 "
            f"{result.ratio_median:.0f}%）"
        )
        closest = sorted(result.cases, key=lambda c: -c.weight)[:3]
        first += "；权重最高的案例：" + "；".join(f"{c.title}（{c.achieved}）" for c in closest)
        headline = f"预计 {span}"
        if result.family is not None:
            headline += f"（按{result.family}指标）"
    elif n == 0:
        # A range needs analogs; the hit probability below still comes from the metric's history.
        first = headline = "没有相似活动测量过该指标，不给区间"
    else:
        cases = "；".join(f"{c.title}：{c.achieved}" for c in result.cases[:listed])
        first = (
            f"样本不足：只有 {n} 个相似活动测量过该指标，不给区间（{cases}）"
            if result.target is not None or result.baseline is not None
            else f"草案没有可用的目标或基线（需为正数），无法按相似活动的达成比例推算（{cases}）"
        )
        headline = f"样本不足（{n} 个相似活动）"
    parts = [first]
    if result.with_target_n:
        parts.append(hits_sentence(n, result.hit_n, result.with_target_n))
    if result.hit_probability is not None:
        adjusted = ""
        # Say why the starting point moved: the fitted effect of how the target was set.
        if abs(start.rate - base.rate) < 0.01:
            pass
        elif result.target and result.baseline:
            adjusted = (
                f"；目标定为基线的 {result.target / result.baseline:.0%}，"
                f"按历史上目标高低与达成的关系，起点调为 {start.rate:.0%}"
            )
        else:
            adjusted = (
                f"；草案没有基线，按历史上没有基线的目标的达成情况，起点调为 {start.rate:.0%}"
            )
        # Said in words, not "n=0": with no analog that set a target for the metric, the figure
        # is the metric's history alone, which a planner should know before trusting it.
        history = f"{result.label}{scope}的历史达成率 {base.rate:.0%}（{base.n} 个指标）"
        if result.with_target_n:
            basis = f"依据 {result.with_target_n} 个设了目标的相似活动"
            reason = f"{basis}；相似案例的达成率已向{history}收缩，相似案例越少越接近历史水平"
        else:
            basis = "没有设了该指标目标的相似活动，按历史达成率估计"
            reason = f"没有设了该指标目标的相似活动，按{history}估计"
        parts.append(f"达成目标的概率约 {result.hit_probability:.0%}（{reason}{adjusted}）")
        headline += f"，达成概率约 {result.hit_probability:.0%}（{basis}）"
    if result.key is not None and result.key.startswith("~"):
        # Outside the catalog: compared with the same name elsewhere and pooled by kind only.
        parts.append(
            f"「{result.name}」不在指标目录中，{result.match_basis}（置信度 "
            f"{result.match_confidence or 0:.0%}），只与其他活动中同名的指标直接比较"
        )
    elif result.match_confidence is not None and result.match_confidence < 1:
        parts.append(
            f"「{result.name}」按名称归为「{result.label}」（{result.match_basis}，"
            f"置信度 {result.match_confidence:.0%}）"
        )
    if result.unit_skipped:
        parts.append(f"另有 {result.unit_skipped} 个相似活动因单位不同未计入")
    return replace(result, summary="；".join(parts) + "。", headline=headline)


def hits_sentence(n: int, hit_n: int, with_target_n: int) -> str:
    """Say how many analogs hit their target, and how many set one."""
    if with_target_n == n:
        return f"{n} 个相似活动中有 {hit_n} 个达成了目标"
    return f"{n} 个相似活动中 {with_target_n} 个设了目标、{hit_n} 个达成"
