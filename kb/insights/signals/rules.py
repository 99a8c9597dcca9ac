"""The warning-signal rules: one decorated function per signal, with its code, label and settings.

Each rule is a pure function over a campaign's readings (``readings.Reading``) and the thresholds;
every fired signal says, in plain Chinese and with the campaign's own numbers, what was seen and
which rule (with its threshold) it broke. Adding a rule is one ``@rule`` function here (plus its
tests and its README setting rows): the registry hands it to everything that lists signals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kb.insights.signals.readings import (
    Reading,
    change,
    fold,
    g,
    named,
    plain,
    signed,
    value_text,
)
from kb.insights.signals.registry import Setting, Signal, SignalThresholds, rule

# A return or complaint rate is "high" severity when it rose by half of its baseline or more.
# (Elsewhere "high" means at least twice as far past the line as the threshold allows:
# attainment ≤ 60 % with the default 80 %, cost up ≥ 40 %, redemption ≤ 10 %.)
RISK_HIGH_RISE_PCT = 50.0


@rule(
    "data_bubble",
    label="数据泡沫",
    explanation="流量类指标（观看人次、曝光、UV 等）的涨幅远超价值类指标（GMV、订单、付费等）的涨幅",
    settings={
        "bubble_ratio": Setting(
            10.0,
            "数据泡沫：流量类指标较基线的涨幅至少是价值类指标最大涨幅的这么多倍"
            "（观看人次 +300%、GMV +8% 为 37 倍）",
        ),
        "bubble_min_traffic_pct": Setting(100.0, "数据泡沫：流量类指标较基线至少上涨这么多 %"),
    },
)
def data_bubble(readings: Sequence[Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire when traffic rose many times more than value (观看人次 +300 %, GMV +8 %).

    The biggest traffic lift is compared with the best value lift, so one value metric that kept
    pace is enough to clear the campaign. Both need a baseline.
    """
    traffic = [r for r in readings if r.kind == "traffic" and r.change_pct is not None]
    value = [r for r in readings if r.kind == "value" and r.change_pct is not None]
    if not traffic or not value:
        return []
    top = max(traffic, key=change)
    best = max(value, key=change)
    rise, gain = change(top), change(best)
    ratio, min_traffic = limits["bubble_ratio"], limits["bubble_min_traffic_pct"]
    if rise < min_traffic or rise < ratio * gain:
        return []
    if gain > 0:
        value_part = f"而 {best.shown} 仅 {signed(gain)}"
    elif gain < 0:
        value_part = f"而 {best.shown} 反而 {signed(gain)}"
    else:
        value_part = f"而 {best.shown} 持平"
    return [
        Signal(
            code="data_bubble",
            severity="high",
            explanation=(
                f"{named(top.shown)}较基线 {signed(rise)}，{value_part}：流量增长没有转化为成交（数据泡沫）"
            ),
            rule=(
                f"流量类指标（观看人次、曝光、UV 等）较基线涨幅 ≥ {g(min_traffic)}%，"
                f"且达到价值类指标（GMV、订单、付费等）最大涨幅的 {g(ratio)} 倍"
            ),
            metrics=(top.name, best.name),
        )
    ]


@rule(
    "low_attainment",
    label="目标达成率过低",
    explanation="已结束活动的主要指标达成率远低于目标",
    settings={
        "attainment_min_pct": Setting(80.0, "目标达成率过低：已结束活动的主要指标达成率低于这个 %"),
    },
    finished_only=True,
)
def low_attainment(readings: Sequence[Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire when the key metric (主要指标) reached less than the minimum share of its target.

    Only the key metric: the goal is judged by it; a secondary metric that missed shows on the
    campaign page and is no warning of its own.
    """
    line = limits["attainment_min_pct"]
    key = next((r for r in readings if r.is_key), None)
    if key is None or key.attainment_pct is None or key.attainment_pct >= line:
        return []
    better = "，越低越好" if key.direction == "lower" else ""
    return [
        Signal(
            code="low_attainment",
            severity="high" if key.attainment_pct <= 100 - 2 * (100 - line) else "medium",
            explanation=(
                f"主要指标 {key.shown} 达成率 {plain(key.attainment_pct)}%，低于 {g(line)}% 的预警线"
                f"（目标 {value_text(key.target, key.unit)}，实际 {value_text(key.actual, key.unit)}{better}）"
            ),
            rule=f"已结束活动的主要指标达成率低于 {g(line)}%（实际 ÷ 目标；越低越好的指标为目标 ÷ 实际）",
            metrics=(key.name,),
        )
    ]


@rule(
    "cost_rise",
    label="获客成本上升",
    explanation="获客成本、转化成本较基线上升过多",
    settings={
        "cost_rise_pct": Setting(20.0, "获客成本上升：获客成本 / CAC / CPA 较基线上升超过这个 %"),
    },
)
def cost_rise(readings: Sequence[Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire when an acquisition or conversion cost rose more than the threshold over baseline."""
    found = []
    line = limits["cost_rise_pct"]
    for r in readings:
        if r.kind != "cost" or r.change_pct is None or r.change_pct <= line:
            continue
        found.append(
            Signal(
                code="cost_rise",
                severity="high" if r.change_pct >= 2 * line else "medium",
                explanation=(
                    f"{named(r.shown)}较基线上升 {plain(r.change_pct)}%（{value_text(r.baseline, r.unit)} → "
                    f"{value_text(r.actual, r.unit)}），超过 {g(line)}% 的预警线：每获得一个用户或一次转化更贵了"
                ),
                rule=f"获客成本 / 转化成本较基线上升超过 {g(line)}%",
                metrics=(r.name,),
            )
        )
    return found


@rule(
    "risk_worse",
    label="退货/投诉变差",
    explanation="退货率或投诉率比基线差",
    settings={
        "risk_rise_pct": Setting(
            0.0, "退货/投诉变差：退货率、投诉率比基线差超过基线的这个 %（0：任何变差都提示）"
        ),
    },
)
def risk_worse(readings: Sequence[Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire when a return or complaint rate is worse than its baseline (beyond the tolerance)."""
    found = []
    line = limits["risk_rise_pct"]
    for r in readings:
        if r.kind != "risk" or r.change_pct is None:
            continue
        # Risk metrics are lower-is-better: worse means the number went up.
        if r.change_pct <= line:
            continue
        found.append(
            Signal(
                code="risk_worse",
                severity="high" if r.change_pct >= RISK_HIGH_RISE_PCT else "medium",
                explanation=(
                    f"{named(r.shown)}比基线差：{value_text(r.baseline, r.unit)} → {value_text(r.actual, r.unit)}"
                    f"（变差 {plain(r.change_pct)}%）：增长可能被退货或投诉抵消"
                ),
                rule=(
                    "退货率、投诉率高于基线"
                    + (f"超过基线的 {g(line)}%" if line > 0 else "（任何变差都提示）")
                ),
                metrics=(r.name,),
            )
        )
    return found


# Coupon counts are not catalog metrics; these names say which is which (matched normalized).
_ISSUED = re.compile(r"(发券|领券|券发放|发放券)(量|数|张数)?$|coupons? issued$")
_REDEEMED = re.compile(r"(核销|用券)(量|数|张数)$|coupons? redeemed$")


@rule(
    "low_redemption",
    label="券核销过低",
    explanation="发出去的券核销率过低（核销率，或核销量 ÷ 发券量）",
    settings={
        "redemption_min_pct": Setting(
            20.0, "券核销过低：券核销率（核销率，或核销量 ÷ 发券量）低于这个 %"
        ),
    },
)
def low_redemption(readings: Sequence[Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire when few of the coupons issued were redeemed: a 核销率, or 核销量 against 发券量.

    A 核销率 written as a fraction (0.18 with no "%" unit) is read as 18 %.
    """
    line = limits["redemption_min_pct"]
    found = []
    for r in readings:
        rate = _rate_pct(r)
        if rate is None or rate >= line:
            continue
        found.append(
            _redemption_signal(rate, line, (r.name,), f"{named(r.shown)}仅 {plain(rate)}%")
        )
    if found:
        return found
    issued = next((r for r in readings if r.actual and _ISSUED.search(fold(r.name))), None)
    redeemed = next(
        (r for r in readings if r.actual is not None and _REDEEMED.search(fold(r.name))), None
    )
    if issued is None or redeemed is None or not issued.actual or redeemed.actual is None:
        return []
    rate = redeemed.actual * 100 / issued.actual
    if rate >= line:
        return []
    what = (
        f"发券 {value_text(issued.actual, issued.unit)}，核销 "
        f"{value_text(redeemed.actual, redeemed.unit)}（{plain(rate)}%）"
    )
    return [_redemption_signal(rate, line, (issued.name, redeemed.name), what)]


def _redemption_signal(rate: float, line: float, names: tuple[str, ...], what: str) -> Signal:
    return Signal(
        code="low_redemption",
        severity="high" if rate <= line / 2 else "medium",
        explanation=f"{what}，低于 {g(line)}%：发出去的券大多没有被使用，券面或门槛可能不对人群",
        rule=f"券核销率（核销量 / 发券量）低于 {g(line)}%",
        metrics=names,
    )


def _rate_pct(r: Reading) -> float | None:
    """Return a 核销率 in %, or None when it is missing or its unit is not a percentage."""
    if r.key != "redemption_rate" or r.actual is None:
        return None
    unit = fold(r.unit)
    if unit == "%":
        return r.actual
    if unit == "":
        return r.actual * 100 if 0 <= r.actual <= 1 else r.actual
    return None
