"""Forecast a draft's metrics from the most similar past campaigns (策略沙盘推演).

Honest ranges, not invented precision: the quartiles of what the nearest analogs actually did,
how many cases they rest on, and no forecast at all when there are too few.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import opencc

from kb.campaigns.metrics import by_key
from search.documents import MetricFact

# Unit prefixes that scale exactly: 万元 = 10 000 元, 亿元 = 10⁸ 元, 万人 = 10 000 人.
_SCALES = {"万": 1e4, "亿": 1e8}
_CNY = {"rmb", "cny", "人民币", "¥", "块", "人民币元"}


@dataclass(frozen=True, slots=True)
class DraftMetric:
    """A metric of the draft: its name, catalog key (None if unknown), target and unit."""

    name: str
    key: str | None
    target: float | None
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Analog:
    """A similar past campaign and its metrics; ``units[i]`` is the unit of ``metrics[i]``.

    Without units (the default) every value is taken to be in the draft metric's unit.
    """

    campaign_id: int
    title: str
    similarity: float
    metrics: tuple[MetricFact, ...]
    units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.units and len(self.units) != len(self.metrics):
            raise ValueError("units must name the unit of every metric, in order")


@dataclass(frozen=True, slots=True)
class MetricForecast:
    """The likely range of one draft metric and the cases it rests on.

    Quartiles, rates and shares are None when there are fewer than ``min_cases`` cases (or
    nothing to compute them from); counts and ``case_ids`` are always given. Actual values are
    in the draft metric's unit; attainment is in percent of each analog's own target.
    """

    name: str
    key: str | None
    unit: str
    n: int
    p25: float | None
    median: float | None
    p75: float | None
    attainment_p25: float | None
    attainment_median: float | None
    attainment_p75: float | None
    hit_rate: float | None
    hit_n: int
    with_target_n: int
    target: float | None
    share_meeting_target: float | None
    target_position: str | None
    enough: bool
    summary: str
    case_ids: list[int]
    unit_skipped: int = 0


@dataclass(frozen=True, slots=True)
class Forecast:
    """One forecast per draft metric, in the draft's order."""

    metrics: list[MetricForecast]


def forecast(
    targets: Sequence[DraftMetric],
    analogs: Sequence[Analog],
    *,
    min_cases: int = 3,
    max_cases: int = 12,
) -> Forecast:
    """Forecast each draft metric from the nearest analogs that measured it.

    ``analogs`` must be sorted by similarity, best first: the first ``max_cases`` analogs with
    an actual value of the metric's catalog key in a compatible unit are the cases. Units are
    compatible when equal after folding, or when one is the other scaled by 万/亿 (converted),
    or, for rate metrics, "%" and "" (no unit). Analogs passed over because of their unit
    before the cap is reached are counted in ``unit_skipped``.
    """
    if min_cases < 1 or max_cases < min_cases:
        raise ValueError("need 1 <= min_cases <= max_cases")
    return Forecast([_forecast_one(t, analogs, min_cases, max_cases) for t in targets])


def quantile(values: Sequence[float], q: float) -> float:
    """Return the q-quantile by linear interpolation between order statistics.

    The same as numpy's default ("linear") and ``statistics.quantiles(method="inclusive")``:
    the minimum is the 0-quantile and the maximum the 1-quantile.
    """
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _forecast_one(
    draft: DraftMetric, analogs: Sequence[Analog], min_cases: int, max_cases: int
) -> MetricForecast:
    if draft.key is None:
        summary = f"「{draft.name}」不在指标目录中，无法与历史活动对比，不做预测"
        return _empty(draft, summary)
    catalog = by_key(draft.key)
    is_rate = catalog is not None and catalog.kind == "rate"
    draft_base, draft_scale = _unit(draft.unit, is_rate)
    values: list[float] = []
    facts: list[MetricFact] = []
    case_ids: list[int] = []
    skipped = 0
    for analog in analogs:
        if len(values) >= max_cases:
            break
        units = analog.units or (draft.unit,) * len(analog.metrics)
        mismatched = False
        for fact, unit in zip(analog.metrics, units, strict=True):
            if fact.key != draft.key or fact.actual is None or not math.isfinite(fact.actual):
                continue
            base, scale = _unit(unit, is_rate)
            if base != draft_base:
                mismatched = True
                continue
            values.append(fact.actual * scale / draft_scale)
            facts.append(fact)
            case_ids.append(analog.campaign_id)
            break
        else:
            if mismatched:
                skipped += 1
    if catalog is not None:
        lower_is_better = catalog.direction == "lower"
    else:  # a key the catalog does not know (yet): trust what the analogs say
        lower_is_better = any(f.direction == "lower" for f in facts)
    return _summarize(draft, values, facts, case_ids, skipped, min_cases, lower_is_better)


def _summarize(
    draft: DraftMetric,
    values: list[float],
    facts: list[MetricFact],
    case_ids: list[int],
    skipped: int,
    min_cases: int,
    lower_is_better: bool,
) -> MetricForecast:
    n = len(values)
    hits = [f.hit for f in facts if f.hit is not None]
    hit_n, with_target_n = sum(hits), len(hits)
    skipped_note = f"（另有 {skipped} 个因单位不同未计入）" if skipped else ""
    if n < min_cases:
        summary = (
            f"只有 {n} 个相似活动测量过该指标，样本太少，不做预测"
            if n
            else "没有相似活动测量过该指标，不做预测"
        )
        return _empty(draft, summary + skipped_note, n, hit_n, with_target_n, case_ids, skipped)
    p25, median, p75 = (quantile(values, q) for q in (0.25, 0.5, 0.75))
    attainments = [f.attainment_pct for f in facts if f.attainment_pct is not None]
    att: list[float | None] = [None] * 3
    if attainments:
        att = [quantile(attainments, q) for q in (0.25, 0.5, 0.75)]
    share = position = None
    met = 0
    if draft.target is not None:
        target = draft.target
        met = sum(v <= target if lower_is_better else v >= target for v in values)
        share = met / n
        position = _position(target, p25, median, p75)
    parts = [
        _hits_sentence(draft.name, n, hit_n, with_target_n),
        f"实际值中位数 {_fmt(median, draft.unit)}"
        f"（四分位 {_fmt(p25, draft.unit)}–{_fmt(p75, draft.unit)}）",
    ]
    if draft.target is not None:
        parts.append(
            f"草案目标 {_fmt(draft.target, draft.unit)}{position}，"
            f"{n} 个相似活动中有 {met} 个的实际值达到该目标"
        )
    return MetricForecast(
        name=draft.name,
        key=draft.key,
        unit=draft.unit,
        n=n,
        p25=p25,
        median=median,
        p75=p75,
        attainment_p25=att[0],
        attainment_median=att[1],
        attainment_p75=att[2],
        hit_rate=hit_n / with_target_n if with_target_n else None,
        hit_n=hit_n,
        with_target_n=with_target_n,
        target=draft.target,
        share_meeting_target=share,
        target_position=position,
        enough=True,
        summary="；".join(parts) + skipped_note,
        case_ids=case_ids,
        unit_skipped=skipped,
    )


def _empty(
    draft: DraftMetric,
    summary: str,
    n: int = 0,
    hit_n: int = 0,
    with_target_n: int = 0,
    case_ids: list[int] | None = None,
    skipped: int = 0,
) -> MetricForecast:
    return MetricForecast(
        name=draft.name,
        key=draft.key,
        unit=draft.unit,
        n=n,
        p25=None,
        median=None,
        p75=None,
        attainment_p25=None,
        attainment_median=None,
        attainment_p75=None,
        hit_rate=None,
        hit_n=hit_n,
        with_target_n=with_target_n,
        target=draft.target,
        share_meeting_target=None,
        target_position=None,
        enough=False,
        summary=summary,
        case_ids=case_ids or [],
        unit_skipped=skipped,
    )


def _hits_sentence(name: str, n: int, hit_n: int, with_target_n: int) -> str:
    if with_target_n == n:
        return f"{n} 个相似活动中有 {hit_n} 个达成了{name}目标"
    if with_target_n:
        return f"{n} 个相似活动测量过{name}，其中 {with_target_n} 个设了目标、{hit_n} 个达成"
    return f"{n} 个相似活动测量过{name}（都没有设目标）"


def _position(target: float, p25: float, median: float, p75: float) -> str:
    """Say where the draft's target falls among the analogs' actual values."""
    if target > p75:
        return "高于 75% 的相似活动实际值"
    if target < p25:
        return "低于 75% 的相似活动实际值"
    if target >= median:
        return "在相似活动实际值的中位数与上四分位之间"
    return "在相似活动实际值的下四分位与中位数之间"


def _fmt(value: float, unit: str) -> str:
    unit = unit.strip()
    if unit in ("%", "％"):
        return f"{value:,.1f}%"
    return f"{value:,.1f} {unit}" if unit else f"{value:,.1f}"


@cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _unit(unit: str, is_rate: bool) -> tuple[str, float]:
    """Return a unit's base (folded: 萬元 → 元) and its scale to that base (万元 → 10 000)."""
    folded = str(_t2s().convert(unicodedata.normalize("NFKC", unit))).casefold()
    folded = re.sub(r"\s+", "", folded)
    scale = 1.0
    if len(folded) > 1 and folded[0] in _SCALES:
        scale, folded = _SCALES[folded[0]], folded[1:]
    if folded in _CNY:
        folded = "元"
    if is_rate and folded == "":
        folded = "%"  # a rate written without its unit is still a percentage
    return folded, scale
