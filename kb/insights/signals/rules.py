"""Warning signals in a campaign's numbers: data bubbles, missed targets, rising costs and risks.

Each rule is a pure function over a campaign's metrics (the dicts of ``metric_to_dict``, or any
mapping with ``name``, ``unit``, ``baseline``, ``target``, ``actual`` and optionally
``catalog_key``). Rules read what a metric measures from the catalog (``kind``: traffic, value,
cost, risk…), so a metric the catalog does not know never fires a signal it could not judge;
the one exception is coupons issued vs redeemed, told apart by name (发券量 / 核销量).

Every fired signal says, in plain Chinese and with the campaign's own numbers, what was seen and
which rule (with its threshold) it broke. Thresholds are settings (``SIGNAL_SETTINGS``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import sqlalchemy as sa
from flask import current_app

from kb.campaigns import metrics as metric_catalog
from kb.extensions import db
from kb.models import Campaign, Metric
from kb.web.rendering import format_number
from search.normalize import normalize

SignalCode = Literal["data_bubble", "low_attainment", "cost_rise", "risk_worse", "low_redemption"]
Severity = Literal["high", "medium"]

# Code -> the short Chinese name shown on badges and in the search filter.
SIGNAL_LABELS: dict[str, str] = {
    "data_bubble": "数据泡沫",
    "low_attainment": "目标达成率过低",
    "cost_rise": "获客成本上升",
    "risk_worse": "退货/投诉变差",
    "low_redemption": "券核销过低",
}
SIGNAL_CODES: tuple[str, ...] = tuple(SIGNAL_LABELS)

# Setting name (``KB_<NAME>`` in the environment) -> (default, meaning). kb.config merges these.
SIGNAL_SETTINGS: dict[str, tuple[float, str]] = {
    "SIGNAL_BUBBLE_RATIO": (
        10.0,
        "Data bubble: a traffic metric's lift over baseline is at least this many times the best "
        "value metric's lift (观看人次 +300% vs GMV +8% is 37×).",
    ),
    "SIGNAL_BUBBLE_MIN_TRAFFIC_PCT": (
        100.0,
        "Data bubble: the traffic metric must be up at least this many % over baseline.",
    ),
    "SIGNAL_ATTAINMENT_MIN_PCT": (
        80.0,
        "Low attainment: a target metric of a completed campaign reached less than this % of target.",
    ),
    "SIGNAL_COST_RISE_PCT": (
        20.0,
        "Cost rise: acquisition / conversion cost (获客成本, CAC, CPA) up more than this % over baseline.",
    ),
    "SIGNAL_RISK_RISE_PCT": (
        0.0,
        "Risk: return or complaint rate worse than baseline by more than this % of the baseline.",
    ),
    "SIGNAL_REDEMPTION_MIN_PCT": (
        20.0,
        "Low redemption: less than this % of the coupons issued were redeemed (核销率).",
    ),
}

# "High" severity: the number is at least twice as far past the line as the threshold allows
# (attainment ≤ 60 % with the default 80 %, cost up ≥ 40 %, redemption ≤ 10 %); a data bubble is
# always high; a return or complaint rate is high when it rose by half of its baseline or more.
RISK_HIGH_RISE_PCT = 50.0


@dataclass(frozen=True, slots=True)
class SignalThresholds:
    """The lines the rules draw; defaults are those of ``SIGNAL_SETTINGS``."""

    bubble_ratio: float = 10.0
    bubble_min_traffic_pct: float = 100.0
    attainment_min_pct: float = 80.0
    cost_rise_pct: float = 20.0
    risk_rise_pct: float = 0.0
    redemption_min_pct: float = 20.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SignalThresholds:
        """Read the ``SIGNAL_*`` settings from a config mapping; missing ones take the defaults."""
        values = {
            field.name: float(config.get(f"SIGNAL_{field.name.upper()}", field.default))
            for field in fields(cls)
        }
        return cls(**values)


def current_thresholds() -> SignalThresholds:
    """Return the thresholds configured for the running app."""
    return SignalThresholds.from_config(current_app.config)


@dataclass(frozen=True, slots=True)
class Signal:
    """A fired rule: what, how bad, and why in plain words with the campaign's numbers."""

    code: SignalCode
    severity: Severity
    explanation: str
    rule: str
    metrics: tuple[str, ...]

    @property
    def label(self) -> str:
        """Return the short Chinese name of the rule."""
        return SIGNAL_LABELS[self.code]

    def to_dict(self) -> dict[str, Any]:
        """Return the API shape."""
        return {
            "code": self.code,
            "label": self.label,
            "severity": self.severity,
            "explanation": self.explanation,
            "rule": self.rule,
            "metrics": list(self.metrics),
        }


@dataclass(frozen=True, slots=True)
class _Reading:
    """One metric as the rules see it: what it measures and how it moved."""

    name: str
    key: str | None
    unit: str
    kind: metric_catalog.Kind | None
    direction: metric_catalog.Direction
    baseline: float | None
    target: float | None
    actual: float | None
    # Raw change from baseline in % (numbers going up is positive, whatever the direction).
    change_pct: float | None
    attainment_pct: float | None


def _readings(metrics: Iterable[Mapping[str, Any]]) -> list[_Reading]:
    readings = []
    for metric in metrics:
        name = str(metric.get("name") or "")
        key = metric.get("catalog_key")
        entry = metric_catalog.by_key(key) if key else metric_catalog.lookup(name)
        direction: metric_catalog.Direction = entry.direction if entry else "higher"
        baseline, target, actual = (
            _number(metric.get(k)) for k in ("baseline", "target", "actual")
        )
        outcome = metric_catalog.assess(direction, baseline, target, actual)
        change = None
        if baseline is not None and actual is not None and baseline != 0:
            change = (actual - baseline) / abs(baseline) * 100
        readings.append(
            _Reading(
                name=name,
                key=entry.key if entry else None,
                unit=str(metric.get("unit") or ""),
                kind=entry.kind if entry else None,
                direction=direction,
                baseline=baseline,
                target=target,
                actual=actual,
                change_pct=change,
                # As on the campaign page: a metric the catalog does not know counts as
                # higher-is-better for attainment (its own target says what was wanted).
                attainment_pct=outcome.attainment_pct,
            )
        )
    return readings


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def evaluate(
    metrics: Iterable[Mapping[str, Any]],
    thresholds: SignalThresholds | None = None,
    *,
    finished: bool = True,
) -> list[Signal]:
    """Return every signal the metrics fire, in rule order.

    ``finished``: the campaign is over. Attainment of target is judged only then (a running
    campaign has not missed its target yet); the other rules compare rates and ratios and are
    judged on partial numbers too.
    """
    limits = thresholds or SignalThresholds()
    readings = _readings(metrics)
    found = data_bubble(readings, limits)
    if finished:
        found += low_attainment(readings, limits)
    found += cost_rise(readings, limits)
    found += risk_worse(readings, limits)
    found += low_redemption(readings, limits)
    if not finished:
        found = [
            replace(s, explanation=s.explanation + "（活动未结束，数据仍在变化）") for s in found
        ]
    return found


def data_bubble(readings: Sequence[_Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire when traffic rose many times more than value (观看人次 +300 %, GMV +8 %).

    The biggest traffic lift is compared with the best value lift, so one value metric that kept
    pace is enough to clear the campaign. Both need a baseline.
    """
    traffic = [r for r in readings if r.kind == "traffic" and r.change_pct is not None]
    value = [r for r in readings if r.kind == "value" and r.change_pct is not None]
    if not traffic or not value:
        return []
    top = max(traffic, key=lambda r: _change(r))
    best = max(value, key=lambda r: _change(r))
    rise, gain = _change(top), _change(best)
    if rise < limits.bubble_min_traffic_pct or rise < limits.bubble_ratio * gain:
        return []
    if gain > 0:
        value_part = f"而 {best.name} 仅 {_signed(gain)}"
    elif gain < 0:
        value_part = f"而 {best.name} 反而 {_signed(gain)}"
    else:
        value_part = f"而 {best.name} 持平"
    return [
        Signal(
            code="data_bubble",
            severity="high",
            explanation=(
                f"{_name(top.name)}较基线 {_signed(rise)}，{value_part}：流量增长没有转化为成交（数据泡沫）"
            ),
            rule=(
                f"流量类指标（观看人次、曝光、UV 等）较基线涨幅 ≥ {_g(limits.bubble_min_traffic_pct)}%，"
                f"且达到价值类指标（GMV、订单、付费等）最大涨幅的 {_g(limits.bubble_ratio)} 倍"
            ),
            metrics=(top.name, best.name),
        )
    ]


def low_attainment(readings: Sequence[_Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire once for the target metrics that reached less than the minimum share of target."""
    line = limits.attainment_min_pct
    low = [r for r in readings if r.attainment_pct is not None and r.attainment_pct < line]
    if not low:
        return []
    parts = []
    for r in low:
        better = "，越低越好" if r.direction == "lower" else ""
        parts.append(
            f"{_name(r.name)}达成率 {_plain(r.attainment_pct or 0)}%（目标 {_value(r.target, r.unit)}，"
            f"实际 {_value(r.actual, r.unit)}{better}）"
        )
    worst = min(r.attainment_pct or 0 for r in low)
    lead = f"{len(low)} 个目标指标" if len(low) > 1 else "目标指标"
    return [
        Signal(
            code="low_attainment",
            severity="high" if worst <= 100 - 2 * (100 - line) else "medium",
            explanation=f"{lead}达成率低于 {_g(line)}% 的预警线：" + "；".join(parts),
            rule=f"已结束活动的目标指标达成率低于 {_g(line)}%（实际 ÷ 目标；越低越好的指标为目标 ÷ 实际）",
            metrics=tuple(r.name for r in low),
        )
    ]


def cost_rise(readings: Sequence[_Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire when an acquisition or conversion cost rose more than the threshold over baseline."""
    found = []
    line = limits.cost_rise_pct
    for r in readings:
        if r.kind != "cost" or r.change_pct is None or r.change_pct <= line:
            continue
        found.append(
            Signal(
                code="cost_rise",
                severity="high" if r.change_pct >= 2 * line else "medium",
                explanation=(
                    f"{_name(r.name)}较基线上升 {_plain(r.change_pct)}%（{_value(r.baseline, r.unit)} → "
                    f"{_value(r.actual, r.unit)}），超过 {_g(line)}% 的预警线：每获得一个用户或一次转化更贵了"
                ),
                rule=f"获客成本 / 转化成本较基线上升超过 {_g(line)}%",
                metrics=(r.name,),
            )
        )
    return found


def risk_worse(readings: Sequence[_Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire when a return or complaint rate is worse than its baseline (beyond the tolerance)."""
    found = []
    line = limits.risk_rise_pct
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
                    f"{_name(r.name)}比基线差：{_value(r.baseline, r.unit)} → {_value(r.actual, r.unit)}"
                    f"（{_signed(r.change_pct)}）：增长可能被退货或投诉抵消"
                ),
                rule=(
                    "退货率、投诉率高于基线"
                    + (f"超过基线的 {_g(line)}%" if line > 0 else "（任何变差都提示）")
                ),
                metrics=(r.name,),
            )
        )
    return found


# Coupon counts are not catalog metrics; these names say which is which (matched normalized).
_ISSUED = re.compile(r"(发券|领券|券发放|发放券)(量|数|张数)?$|coupons? issued$")
_REDEEMED = re.compile(r"(核销|用券)(量|数|张数)$|coupons? redeemed$")


def low_redemption(readings: Sequence[_Reading], limits: SignalThresholds) -> list[Signal]:
    """Fire when few of the coupons issued were redeemed: a 核销率, or 核销量 against 发券量.

    A 核销率 written as a fraction (0.18 with no "%" unit) is read as 18 %.
    """
    line = limits.redemption_min_pct
    found = []
    for r in readings:
        rate = _rate_pct(r)
        if rate is None or rate >= line:
            continue
        found.append(
            _redemption_signal(rate, line, (r.name,), f"{_name(r.name)}仅 {_plain(rate)}%")
        )
    if found:
        return found
    issued = next((r for r in readings if r.actual and _ISSUED.search(_fold(r.name))), None)
    redeemed = next(
        (r for r in readings if r.actual is not None and _REDEEMED.search(_fold(r.name))), None
    )
    if issued is None or redeemed is None or not issued.actual or redeemed.actual is None:
        return []
    rate = redeemed.actual * 100 / issued.actual
    if rate >= line:
        return []
    what = (
        f"发券 {_value(issued.actual, issued.unit)}，核销 "
        f"{_value(redeemed.actual, redeemed.unit)}（{_plain(rate)}%）"
    )
    return [_redemption_signal(rate, line, (issued.name, redeemed.name), what)]


def _redemption_signal(rate: float, line: float, names: tuple[str, ...], what: str) -> Signal:
    return Signal(
        code="low_redemption",
        severity="high" if rate <= line / 2 else "medium",
        explanation=f"{what}，低于 {_g(line)}%：发出去的券大多没有被使用，券面或门槛可能不对人群",
        rule=f"券核销率（核销量 / 发券量）低于 {_g(line)}%",
        metrics=names,
    )


def _rate_pct(r: _Reading) -> float | None:
    """Return a 核销率 in %, or None when it is missing or its unit is not a percentage."""
    if r.key != "redemption_rate" or r.actual is None:
        return None
    unit = _fold(r.unit)
    if unit == "%":
        return r.actual
    if unit == "":
        return r.actual * 100 if 0 <= r.actual <= 1 else r.actual
    return None


def _change(r: _Reading) -> float:
    return r.change_pct if r.change_pct is not None else 0.0


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", normalize(text)[0]).strip()


def _name(name: str) -> str:
    """Return a metric name ready to be followed by Chinese: "ROI " but "退货率"."""
    return f"{name} " if name[-1:].isascii() and name[-1:].isalnum() else name


def _signed(value: float) -> str:
    return f"{'+' if value > 0 else ''}{_plain(value)}%"


def _plain(value: float) -> str:
    """Write a percentage with at most one decimal: 320, 8.1, 79.5 (never "-0")."""
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _g(value: float) -> str:
    return f"{value:g}"


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    unit = unit.strip()
    if unit in ("%", "％"):
        return f"{format_number(value)}%"
    return f"{format_number(value)} {unit}" if unit else format_number(value)


def campaign_signals(
    campaign: Campaign, thresholds: SignalThresholds | None = None
) -> list[Signal]:
    """Return the signals of a stored campaign with the app's thresholds."""
    metrics = [_metric_mapping(m) for m in campaign.metrics]
    return evaluate(
        metrics, thresholds or current_thresholds(), finished=campaign.status == "completed"
    )


def _metric_mapping(metric: Metric) -> dict[str, Any]:
    return {
        "name": metric.name,
        "unit": metric.unit,
        "catalog_key": metric.catalog_key,
        "baseline": metric.baseline,
        "target": metric.target,
        "actual": metric.actual,
    }


def signals_by_campaign(
    ids: Iterable[int] | None = None, thresholds: SignalThresholds | None = None
) -> dict[int, list[Signal]]:
    """Return the signals of live campaigns (all, or those with the given ids), by id.

    Reads metric rows only (one query, no ORM objects): every campaign is judged on each call,
    which at thousands of campaigns is milliseconds; campaigns without signals are left out.
    """
    limits = thresholds or current_thresholds()
    query = (
        sa.select(
            Metric.campaign_id,
            Campaign.status,
            Metric.name,
            Metric.unit,
            Metric.catalog_key,
            Metric.baseline,
            Metric.target,
            Metric.actual,
        )
        .join(Campaign, Campaign.id == Metric.campaign_id)
        .where(Campaign.deleted_at.is_(None))
        .order_by(Metric.campaign_id, Metric.position)
    )
    if ids is not None:
        wanted = list(ids)
        if not wanted:
            return {}
        query = query.where(Metric.campaign_id.in_(wanted))
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    statuses: dict[int, str] = {}
    for campaign_id, status, name, unit, key, baseline, target, actual in db.session.execute(query):
        statuses[campaign_id] = status
        grouped[campaign_id].append(
            {
                "name": name,
                "unit": unit,
                "catalog_key": key,
                "baseline": baseline,
                "target": target,
                "actual": actual,
            }
        )
    result = {}
    for campaign_id, metrics in grouped.items():
        found = evaluate(metrics, limits, finished=statuses[campaign_id] == "completed")
        if found:
            result[campaign_id] = found
    return result


def campaigns_with_signals(codes: set[str] | None = None) -> set[int]:
    """Return the ids of live campaigns firing any signal (or any of ``codes``, when given)."""
    return {
        campaign_id
        for campaign_id, found in signals_by_campaign().items()
        if not codes or any(s.code in codes for s in found)
    }
