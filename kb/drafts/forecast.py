"""Forecast a draft's metrics from the most similar past campaigns (策略沙盘推演).

Campaigns differ in scale by 100×, so what carries over is how each analog did against its own
target (attainment) or baseline (lift), never its absolute numbers. The forecast applies the
analogs' weighted median ratio, shrunk toward the metric's median ratio in the corpus as far as
the corpus says similar campaigns really differ, to the draft's own target (else baseline); the
range around it has the width that held half of the corpus' results in leave-one-out. When
fewer than ``MIN_CASES`` analogs measured the metric, analogs' metrics of the same kind (a rate
beside other rates) are pooled, with the kind's own center and calibrated width. The hit
probability is the analogs' hit rate shrunk toward the base rate of that metric and goal type,
moved by a fitted model of how the target was set (its height over the baseline, a target
asking for no gain, no baseline); all fitted in kb/drafts/priors.py. Fewer than ``MIN_CASES``
analogs of the metric and of its kind: no range, the cases are listed, "样本不足"."""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

from kb import vocab
from kb.campaigns import metrics as catalog
from kb.drafts import forecast_text
from kb.drafts.priors import BaseRate, Prior, ambition_of, build_prior, corpus_prior, log_ratio
from kb.models import Campaign

# Below five analogs a quartile is one or two cases: the rule, not a fitted value.
MIN_CASES = 5
# Analogs beyond the 30 most similar that measured a metric add little weight and much noise.
MAX_CASES = 30
Basis = Literal["target", "baseline"]
# bench/eval_forecast.py --equal-weights turns this off to measure what the weighting adds.
WEIGH_ANALOGS = True


@dataclass(frozen=True, slots=True)
class PastMetric:
    """One metric of a past campaign, as it was recorded."""

    name: str
    unit: str
    baseline: float | None
    target: float | None
    actual: float | None


@dataclass(frozen=True, slots=True)
class Analog:
    """A similar past campaign: its similarity score, what makes it close, and its metrics."""

    campaign_id: int
    title: str
    similarity: float
    metrics: tuple[PastMetric, ...]
    industry: str | None = None
    business_line: str | None = None
    budget_cny: float | None = None
    days: int | None = None


@dataclass(frozen=True, slots=True)
class DraftMetric:
    """A metric the draft targets: name, unit, and its own baseline and target (either may lack)."""

    name: str
    unit: str = ""
    baseline: float | None = None
    target: float | None = None


@dataclass(frozen=True, slots=True)
class DraftContext:
    """What an analog's closeness to the draft is measured on."""

    industry: str | None = None
    business_line: str | None = None
    goal_type: str | None = None
    budget_cny: float | None = None
    days: int | None = None


@dataclass(frozen=True, slots=True)
class ForecastCase:
    """An analog a forecast rests on and what it achieved against its own target or baseline."""

    campaign_id: int
    title: str
    weight: float
    name: str
    ratio_pct: float | None
    hit: bool | None
    achieved: str


@dataclass(frozen=True, slots=True)
class MetricForecast:
    """The likely range of one draft metric, the cases it rests on, and how sure it is.

    ``p25``/``median``/``p75`` are in the draft's unit, ``ratio_*`` in percent of the draft's
    target (basis "target") or baseline (basis "baseline"); all None with fewer than
    ``MIN_CASES`` cases or without a basis. ``hit_probability`` is shrunk toward
    ``base_rate`` and needs a draft target; ``hit_rate`` is the analogs' raw share
    (``hit_n`` / ``with_target_n``). ``match_confidence`` says how sure the name's catalog match
    is (1.0: a catalog name). ``summary`` is the Chinese paragraph, ``headline`` its one line.
    When fewer than ``MIN_CASES`` analogs measured the metric itself, the range may rest on
    ``family_n`` analogs' metrics of the same kind: ``family`` names the kind, ``cases`` are
    those analogs.
    """

    name: str
    key: str | None
    label: str | None
    match_confidence: float | None
    match_basis: str | None
    unit: str
    direction: str | None
    basis: Basis | None
    target: float | None
    baseline: float | None
    n: int
    n_effective: float
    p25: float | None
    median: float | None
    p75: float | None
    ratio_p25: float | None
    ratio_median: float | None
    ratio_p75: float | None
    hit_probability: float | None
    hit_rate: float | None
    hit_n: int
    with_target_n: int
    base_rate: float | None
    base_rate_n: int
    enough: bool
    summary: str
    headline: str
    cases: tuple[ForecastCase, ...]
    case_ids: tuple[int, ...]
    unit_skipped: int = 0
    family: str | None = None
    family_n: int = 0


@dataclass(frozen=True, slots=True)
class Forecast:
    """One forecast per draft metric, in the draft's order."""

    metrics: tuple[MetricForecast, ...]


class DraftMetricLike(Protocol):
    """A draft metric row as the schema gives it (a baseline is optional)."""

    @property
    def name(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def target(self) -> float | None: ...


class DraftLike(Protocol):
    """The parts of a draft the forecast reads."""

    @property
    def industry(self) -> str | None: ...
    @property
    def business_line(self) -> str | None: ...
    @property
    def goal_type(self) -> str | None: ...
    @property
    def budget_cny(self) -> float | None: ...
    @property
    def start_date(self) -> date | None: ...
    @property
    def end_date(self) -> date | None: ...
    @property
    def metrics(self) -> Sequence[DraftMetricLike]: ...


# Budgets whose ratio is no number (1e300 against 5e-324) weigh as this many powers of ten apart.
_FAR = 30.0


def forecast_draft(
    draft: DraftLike, cases: Sequence[tuple[Campaign, float]], *, exclude: Collection[int] = ()
) -> Forecast:
    """Forecast a draft from its similar cases (campaign, score), best first, and the corpus."""
    context = DraftContext(
        industry=draft.industry,
        business_line=draft.business_line,
        goal_type=draft.goal_type,
        budget_cny=draft.budget_cny,
        days=_days(draft.start_date, draft.end_date),
    )
    targets = [
        # The schema may not carry a baseline yet; a draft without one forecasts from its target.
        DraftMetric(m.name, m.unit, getattr(m, "baseline", None), m.target)
        for m in draft.metrics
    ]
    analogs = [analog_of(campaign, score) for campaign, score in cases]
    return forecast(targets, analogs, context=context, prior=corpus_prior(exclude))


def analog_of(campaign: Campaign, similarity: float) -> Analog:
    """Return a stored campaign as an analog."""
    return Analog(
        campaign_id=campaign.id,
        title=campaign.title,
        similarity=similarity,
        metrics=tuple(
            PastMetric(m.name, m.unit, m.baseline, m.target, m.actual) for m in campaign.metrics
        ),
        industry=campaign.industry,
        business_line=campaign.business_line,
        budget_cny=campaign.budget_cny,
        days=_days(campaign.start_date, campaign.end_date),
    )


def forecast(
    targets: Sequence[DraftMetric],
    analogs: Sequence[Analog],
    *,
    context: DraftContext | None = None,
    prior: Prior | None = None,
    min_cases: int = MIN_CASES,
    max_cases: int = MAX_CASES,
) -> Forecast:
    """Forecast each draft metric from the analogs (best first) that measured it.

    Without a ``prior`` (no corpus) the base rate is 0.5 and the range width a placeholder.
    """
    if min_cases < 1 or max_cases < min_cases:
        raise ValueError("need 1 <= min_cases <= max_cases")
    context = context or DraftContext()
    prior = prior or build_prior([])
    weights = _weights(analogs, context)
    return Forecast(
        tuple(
            _forecast_one(t, analogs, weights, context, prior, min_cases, max_cases)
            for t in targets
        )
    )


def weighted_quantile(values: Sequence[float], weights: Sequence[float], q: float) -> float:
    """Return the q-quantile of weighted values (midpoint rule: equal weights give the median)."""
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(w for _, w in pairs)
    if total <= 0:
        raise ValueError("weights must sum to more than 0")
    cumulative = 0.0
    points = []
    for value, weight in pairs:
        points.append(((cumulative + weight / 2) / total, value))
        cumulative += weight
    if q <= points[0][0]:
        return points[0][1]
    for (p0, v0), (p1, v1) in itertools.pairwise(points):
        if q <= p1:
            return v0 + (v1 - v0) * (q - p0) / (p1 - p0) if p1 > p0 else v1
    return points[-1][1]


@dataclass(frozen=True, slots=True)
class _Observation:
    analog: Analog
    metric: PastMetric
    weight: float
    log_ratio: float | None
    hit: bool | None


def _forecast_one(
    draft: DraftMetric,
    analogs: Sequence[Analog],
    weights: Sequence[float],
    context: DraftContext,
    prior: Prior,
    min_cases: int,
    max_cases: int,
) -> MetricForecast:
    found = catalog.resolve(draft.name, draft.unit)
    if found is None:
        return _unmatched(draft)
    entry = found.metric
    sign = -1.0 if entry.direction == "lower" else 1.0
    basis: Basis | None = None
    reference = 0.0  # the draft's own target or baseline the analogs' ratios are applied to
    if draft.target is not None and _positive(draft.target):
        basis, reference = "target", draft.target
    elif draft.baseline is not None and _positive(draft.baseline):
        basis, reference = "baseline", draft.baseline
    observations, skipped = _observe(draft, entry, analogs, weights, basis, max_cases)
    base = prior.base_rate(entry.key, context.goal_type)
    usable = [o for o in observations if o.log_ratio is not None]
    pooled: list[_Observation] = []
    if basis is not None and len(usable) < min_cases:
        # Ratios to a campaign's own target are scale-free, so metrics of the same kind
        # (留存 beside 续费率, K值 beside 转化率) say how such targets fare; the range width
        # is calibrated for that pooling separately (RatioPrior.family_residuals).
        pooled, _ = _observe(draft, entry, analogs, weights, basis, max_cases, family=True)
    with_target = [o for o in observations if o.hit is not None]
    hit_n = sum(bool(o.hit) for o in with_target)
    sign_ambition = ambition_of(draft.baseline, draft.target, sign)
    start = BaseRate(prior.adjusted(base.rate, sign_ambition), base.n)
    hit_probability = (
        _shrunk_rate(with_target, start, prior.strength) if draft.target is not None else None
    )
    ratios: list[float | None] = [None, None, None]
    values: list[float | None] = [None, None, None]
    ratio_prior = prior.attainment if basis == "target" else prior.lift
    family = len(pooled) >= min_cases and ratio_prior.family_residuals is not None
    if family:
        usable = pooled
    enough = basis is not None and len(usable) >= min_cases
    if enough:
        own = weighted_quantile(
            [o.log_ratio for o in usable if o.log_ratio is not None],
            [o.weight for o in usable],
            0.5,
        )
        # The analogs' median, shrunk toward the corpus median of the metric (else its kind)
        # by the fitted strength.
        analogs_n = _effective_n([o.weight for o in usable])
        corpus_center = (
            ratio_prior.family_center(entry.kind) if family else ratio_prior.center(entry.key)
        )
        center = (analogs_n * own + ratio_prior.strength * corpus_center) / (
            analogs_n + ratio_prior.strength
        )
        low, high = (
            ratio_prior.family_residuals
            if family and ratio_prior.family_residuals
            else ratio_prior.residuals
        )
        logs = (center + low, center, center + high)
        ratios = [math.exp(v) * 100 for v in logs]
        # For a lower-is-better metric a good ratio means a smaller value: flip the range.
        scaled = sorted(reference * math.exp(sign * v) for v in logs)
        values = [scaled[0], scaled[1], scaled[2]]
    n_effective = _effective_n([o.weight for o in usable or observations])
    result = MetricForecast(
        name=draft.name,
        key=entry.key,
        label=entry.label,
        match_confidence=found.confidence,
        match_basis=found.basis,
        unit=draft.unit,
        direction=entry.direction,
        basis=basis if enough else None,
        target=draft.target,
        baseline=draft.baseline,
        n=len(observations),
        n_effective=round(n_effective, 2),
        p25=values[0],
        median=values[1],
        p75=values[2],
        ratio_p25=ratios[0],
        ratio_median=ratios[1],
        ratio_p75=ratios[2],
        hit_probability=hit_probability,
        hit_rate=hit_n / len(with_target) if with_target else None,
        hit_n=hit_n,
        with_target_n=len(with_target),
        base_rate=base.rate if draft.target is not None else None,
        base_rate_n=base.n,
        enough=enough,
        summary="",
        headline="",
        cases=tuple(_case(o, basis, entry.key) for o in (usable if family else observations)),
        case_ids=tuple(o.analog.campaign_id for o in (usable if family else observations)),
        unit_skipped=skipped,
        family=catalog.KIND_LABELS[entry.kind] if family else None,
        family_n=len(usable) if family else 0,
    )
    goal = vocab.GOAL_TYPES.get(context.goal_type or "", "")
    scoped = (entry.key, context.goal_type or "") in prior.by_key_goal
    scope = f"在{goal}类活动中" if goal and scoped else ""
    return forecast_text.with_summary(result, scope, base, start, listed=MIN_CASES)


def _observe(
    draft: DraftMetric,
    entry: catalog.CatalogMetric,
    analogs: Sequence[Analog],
    weights: Sequence[float],
    basis: Basis | None,
    max_cases: int,
    *,
    family: bool = False,
) -> tuple[list[_Observation], int]:
    """Return each analog's first usable row of the metric (best analogs first) and skips.

    ``family``: an analog without the metric itself gives its first metric of the same kind
    that has a ratio to its own target or baseline (only ratios are pooled across metrics).
    """
    observations: list[_Observation] = []
    skipped = 0
    for analog, weight in zip(analogs, weights, strict=True):
        if len(observations) >= max_cases:
            break
        mismatched = False
        chosen: _Observation | None = None
        for metric in analog.metrics:
            if metric.actual is None or not math.isfinite(metric.actual):
                continue
            found = catalog.resolve(metric.name, metric.unit)
            if found is None:
                continue
            same = found.metric.key == entry.key
            if not same and not (family and found.metric.kind == entry.kind):
                continue
            blank = catalog.blank_unit(found.metric)
            if same and not catalog.units_compatible(metric.unit, draft.unit, blank=blank):
                mismatched = True
                continue
            observation = _observation(analog, metric, found.metric, weight, basis)
            if family and observation.log_ratio is None:
                continue
            if same:
                chosen = observation
                break
            chosen = chosen or observation
        if chosen is not None:
            observations.append(chosen)
        else:
            skipped += mismatched
    return observations, skipped


def _observation(
    analog: Analog,
    metric: PastMetric,
    entry: catalog.CatalogMetric,
    weight: float,
    basis: Basis | None,
) -> _Observation:
    """Return an analog's row as its ratio to its own target or baseline, up being good."""
    own = metric.target if basis == "target" else metric.baseline
    actual = metric.actual or 0.0
    ratio = None
    if basis is not None and own is not None and (found := log_ratio(actual, own)) is not None:
        ratio = (-1.0 if entry.direction == "lower" else 1.0) * found
    outcome = catalog.assess(entry.direction, None, metric.target, metric.actual)
    return _Observation(analog, metric, weight, ratio, outcome.hit)


def _weights(analogs: Sequence[Analog], context: DraftContext) -> list[float]:
    """Weigh each analog by its similarity score and closeness to the draft.

    Hand-set, not fitted (44 demo campaigns cannot fit five weights): similarity relative to
    the best analog; a same industry or business line each counts as much as the similarity;
    budget and duration halve the weight at 10× / 2× apart. ``bench/eval_forecast.py
    --equal-weights`` measures the same corpus with every analog weighing the same.
    """
    if not WEIGH_ANALOGS:
        return [1.0] * len(analogs)
    best = max((a.similarity for a in analogs), default=0.0)
    weights = []
    for analog in analogs:
        relative = max(analog.similarity, 0.0) / best if best > 0 else 1.0
        weight = max(relative, 0.05)
        weight *= (
            1
            + _same(context.industry, analog.industry)
            + _same(context.business_line, analog.business_line)
        ) / 3
        if context.budget_cny and analog.budget_cny:
            budgets = log_ratio(context.budget_cny, analog.budget_cny)
            weight /= 1 + (_FAR if budgets is None else abs(budgets) / math.log(10))
        if context.days and analog.days:
            weight /= 1 + abs(math.log2(context.days / analog.days))
        weights.append(weight)
    return weights


def _shrunk_rate(observations: Sequence[_Observation], base: BaseRate, strength: float) -> float:
    """Shrink the analogs' weighted hit rate toward the base rate (a beta prior of ``strength``)."""
    if not observations:
        return base.rate
    weights = [o.weight for o in observations]
    rate = sum(o.weight * bool(o.hit) for o in observations) / sum(weights)
    n = _effective_n(weights)
    return (rate * n + base.rate * strength) / (n + strength)


def _effective_n(weights: Sequence[float]) -> float:
    """Return Kish's effective sample size: n when weights are equal, fewer when they differ."""
    total = sum(weights)
    squares = sum(w * w for w in weights)
    return total * total / squares if squares else 0.0


def _case(observation: _Observation, basis: Basis | None, key: str) -> ForecastCase:
    metric = observation.metric
    ratio_pct = math.exp(observation.log_ratio) * 100 if observation.log_ratio is not None else None
    found = catalog.resolve(metric.name, metric.unit)
    # A case pooled from a metric of the same kind says which metric it is.
    which = "" if found is not None and found.metric.key == key else f"{metric.name} "
    if basis == "target" and ratio_pct is not None:
        achieved = f"{which}达成目标的 {ratio_pct:.0f}%"
    elif basis == "baseline" and ratio_pct is not None:
        achieved = f"{which}为基线的 {ratio_pct:.0f}%"
    else:
        achieved = f"实际 {forecast_text.format_value(metric.actual or 0.0, metric.unit)}"
    if observation.hit is not None and basis != "target":
        achieved += "，达成目标" if observation.hit else "，未达目标"
    return ForecastCase(
        campaign_id=observation.analog.campaign_id,
        title=observation.analog.title,
        weight=round(observation.weight, 3),
        name=metric.name,
        ratio_pct=ratio_pct,
        hit=observation.hit,
        achieved=achieved,
    )


def _unmatched(draft: DraftMetric) -> MetricForecast:
    return MetricForecast(
        name=draft.name,
        key=None,
        label=None,
        match_confidence=None,
        match_basis=None,
        unit=draft.unit,
        direction=None,
        basis=None,
        target=draft.target,
        baseline=draft.baseline,
        n=0,
        n_effective=0.0,
        p25=None,
        median=None,
        p75=None,
        ratio_p25=None,
        ratio_median=None,
        ratio_p75=None,
        hit_probability=None,
        hit_rate=None,
        hit_n=0,
        with_target_n=0,
        base_rate=None,
        base_rate_n=0,
        enough=False,
        summary=f"「{draft.name}」不在指标目录中，也无法按名称或单位归类，不做预测。",
        headline="不在指标目录中，不做预测",
        cases=(),
        case_ids=(),
    )


def _days(start: date | None, end: date | None) -> int | None:
    if start is None or end is None:
        return None
    return max(1, (end - start).days + 1)


def _same(mine: str | None, theirs: str | None) -> float:
    return float(bool(mine) and bool(theirs) and (mine or "").strip() == (theirs or "").strip())


def _positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0
