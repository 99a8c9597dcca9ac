"""What the whole library says before any analog is looked at: base rates and error widths.

A forecast from a handful of analogs needs two things from the rest of the corpus: how often a
metric of this kind meets its target in campaigns of this goal type (the base rate a hit rate is
shrunk toward), and how far a campaign's result typically lands from what its peers did (the
width of an honest range). Both are computed from completed campaigns, scale-free (log of actual
over the campaign's own target or baseline), and recomputed when the library changes.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from flask import current_app

from kb.campaigns import metrics as catalog
from kb.extensions import db
from kb.models import Campaign, Metric

# Bounds on the beta prior's strength (in pseudo-campaigns). Below 2 a single analog decides;
# above 200 analogs could never move the base rate. Only reached when the fit is degenerate.
STRENGTH_BOUNDS = (2.0, 200.0)
# A slope of 5 per unit of log ambition already turns a coin flip into 99 % across ×2.7: the
# fit stops there rather than chase a corpus where ambition separates hits perfectly.
SLOPE_BOUND = 5.0
# From this many metric rows on, excluding a handful of campaigns reuses the full prior.
LARGE_CORPUS_ROWS = 5000


@dataclass(frozen=True, slots=True)
class PriorRow:
    """One completed campaign's metric, scale-free: log ratios oriented so that up is good."""

    campaign_id: int
    key: str
    goal_type: str
    industry: str
    log_attainment: float | None
    log_lift: float | None
    hit: bool | None
    ambition: float | None = None


@dataclass(frozen=True, slots=True)
class BaseRate:
    """A hit rate shrunk toward its parent, and how many target metrics it rests on."""

    rate: float
    n: int


@dataclass(frozen=True, slots=True)
class RatioPrior:
    """What the corpus says about one kind of log ratio (attainment or lift).

    ``centers``: each metric's median; ``strength``: how many analogs that median is worth
    when the analogs' own median is shrunk toward it (fitted); ``residuals``: the quartiles
    of a result around its peers' median, the calibrated half-width of a range.
    """

    centers: dict[str, float]
    overall_center: float
    strength: float
    residuals: tuple[float, float]

    def center(self, key: str) -> float:
        """Return a metric's median log ratio in the corpus, else every metric's."""
        return self.centers.get(key, self.overall_center)


@dataclass(frozen=True, slots=True)
class Prior:
    """Corpus-wide base rates, and the centers and widths of a forecast range (log ratios)."""

    overall: BaseRate
    by_key: dict[str, BaseRate]
    by_key_goal: dict[tuple[str, str], BaseRate]
    strength: float
    attainment: RatioPrior
    lift: RatioPrior
    # How a target's height over its baseline moves the odds of meeting it (fitted).
    ambition_slope: float = 0.0
    ambition_center: float = 0.0

    def adjusted(self, rate: float, ambition: float | None) -> float:
        """Return a base rate moved by the fitted effect of the target's height over baseline."""
        if ambition is None or not self.ambition_slope:
            return rate
        shift = self.ambition_slope * (clip_ambition(ambition) - self.ambition_center)
        return 1 / (1 + math.exp(-(_logit(rate) + shift)))

    def base_rate(self, key: str, goal_type: str | None) -> BaseRate:
        """Return the base rate of a metric in campaigns of a goal type, else of the metric."""
        if goal_type is not None and (key, goal_type) in self.by_key_goal:
            return self.by_key_goal[(key, goal_type)]
        return self.by_key.get(key, self.overall)


StoredMetric = tuple[int, str, str, str, str, float | None, float | None, float | None]


def rows_of(metrics: Iterable[StoredMetric]) -> list[PriorRow]:
    """Turn (campaign id, industry, goal type, name, unit, baseline, target, actual) into rows."""
    rows = []
    for campaign_id, industry, goal_type, name, unit, baseline, target, actual in metrics:
        found = catalog.match(name, unit)
        if found is None or actual is None:
            continue
        sign = -1.0 if found.metric.direction == "lower" else 1.0
        outcome = catalog.assess(found.metric.direction, baseline, target, actual)
        rows.append(
            PriorRow(
                campaign_id=campaign_id,
                key=found.metric.key,
                goal_type=goal_type,
                industry=industry,
                log_attainment=_log_ratio(actual, target, sign),
                log_lift=_log_ratio(actual, baseline, sign),
                hit=outcome.hit,
                ambition=ambition_of(baseline, target, sign),
            )
        )
    return rows


def build_prior(rows: Sequence[PriorRow]) -> Prior:
    """Fit the base rates, the shrinkage strength and the range widths from the rows."""
    with_target = [r for r in rows if r.hit is not None]
    hits = sum(bool(r.hit) for r in with_target)
    # Jeffreys' prior for the overall rate: no corpus at all still gives a usable 0.5.
    overall_rate = (hits + 0.5) / (len(with_target) + 1)
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    keys: dict[str, list[bool]] = defaultdict(list)
    for r in with_target:
        groups[(r.key, r.goal_type)].append(bool(r.hit))
        keys[r.key].append(bool(r.hit))
    strength = fit_strength(list(groups.values()), overall_rate)
    by_key = {k: _shrink(v, overall_rate, strength) for k, v in keys.items()}
    by_key_goal = {g: _shrink(v, by_key[g[0]].rate, strength) for g, v in groups.items()}
    slope, center = fit_ambition(
        [(by_key_goal[(r.key, r.goal_type)].rate, r.ambition, bool(r.hit)) for r in with_target]
    )
    return Prior(
        overall=BaseRate(overall_rate, len(with_target)),
        by_key=by_key,
        by_key_goal=by_key_goal,
        strength=strength,
        attainment=ratio_prior([(r.key, r.goal_type, r.log_attainment) for r in rows]),
        lift=ratio_prior([(r.key, r.goal_type, r.log_lift) for r in rows]),
        ambition_slope=slope,
        ambition_center=center,
    )


def ratio_prior(values: Sequence[tuple[str, str, float | None]]) -> RatioPrior:
    """Fit the centers, center strength and range width of (metric, goal type, log ratio)."""
    present = [(key, goal, v) for key, goal, v in values if v is not None]
    by_key: dict[str, list[float]] = defaultdict(list)
    by_group: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, goal, v in present:
        by_key[key].append(v)
        by_group[(key, goal)].append(v)
    centers = {key: statistics.median(vs) for key, vs in by_key.items()}
    return RatioPrior(
        centers=centers,
        overall_center=statistics.median(v for _, _, v in present) if present else 0.0,
        strength=fit_center_strength(
            [[v - centers[key] for v in vs] for (key, _), vs in by_group.items()]
        ),
        residuals=loo_residual_quartiles([(0, key, v) for key, _, v in present]),
    )


def fit_center_strength(groups: Sequence[Sequence[float]]) -> float:
    """Fit how many analogs a metric's corpus median is worth against the analogs' own median.

    One-way random effects by the method of moments, on deviations from each metric's median
    grouped by metric and goal type (the neighbourhood analogs come from): within-group
    variance σ² over between-group variance τ². Groups that differ no more than their noise
    allows give a strong prior, so similar campaigns move the forecast only as far as the
    corpus shows similar campaigns really do differ. Deviations are clipped to ±1.5 (×4.5)
    so one odd record cannot decide it.
    """
    low, high = STRENGTH_BOUNDS
    sized = [[min(max(v, -1.5), 1.5) for v in g] for g in groups if len(g) >= 2]
    if len(sized) < 2:
        return high
    within = sum((v - statistics.fmean(g)) ** 2 for g in sized for v in g)
    freedom = sum(len(g) - 1 for g in sized)
    sigma2 = within / freedom if freedom else 0.0
    tau2 = statistics.fmean(statistics.fmean(g) ** 2 - sigma2 / len(g) for g in sized)
    if tau2 <= 0:
        return high
    return min(high, max(low, sigma2 / tau2))


def fit_strength(groups: Sequence[Sequence[bool]], overall: float) -> float:
    """Fit a beta prior's strength (in pseudo-cases) to how much groups' hit rates differ.

    Empirical Bayes: the strength m that maximizes the beta-binomial likelihood of the groups'
    hit counts around the overall rate. Groups that differ no more than chance allows get a
    strong prior (shrink hard); groups that really differ, a weak one.
    """
    low, high = STRENGTH_BOUNDS
    if len(groups) < 2 or not 0 < overall < 1:
        return high

    def log_likelihood(strength: float) -> float:
        a, b = strength * overall, strength * (1 - overall)
        return sum(
            math.lgamma(sum(g) + a)
            + math.lgamma(len(g) - sum(g) + b)
            - math.lgamma(len(g) + a + b)
            - math.lgamma(a)
            - math.lgamma(b)
            + math.lgamma(a + b)
            for g in groups
        )

    # A log-spaced grid over the bounds: one parameter, no convergence to go wrong.
    grid = [low * math.exp(math.log(high / low) * step / 40) for step in range(41)]
    return max(grid, key=log_likelihood)


def ambition_of(baseline: float | None, target: float | None, sign: float) -> float | None:
    """Return how far a target is set beyond its baseline (log ratio, up is more ambitious)."""
    return _log_ratio(target, baseline, sign) if target is not None else None


def clip_ambition(value: float) -> float:
    """Bound an ambition to ×0.37–×2.7 of the baseline, so one odd target cannot steer a fit."""
    return min(max(value, -1.0), 1.0)


def fit_ambition(rows: Sequence[tuple[float, float | None, bool]]) -> tuple[float, float]:
    """Fit how a target's ambition shifts the log-odds of a hit, beyond the base rate.

    One slope by maximum likelihood (logistic, offset by each row's base rate) with a standard
    normal prior on it, so a corpus without the effect leaves the slope near 0. Returns the
    slope and the mean ambition it is centred on; rows without a baseline are left out.
    """
    known = [(rate, clip_ambition(a), hit) for rate, a, hit in rows if a is not None]
    if len(known) < 10:
        return 0.0, 0.0
    center = statistics.fmean(a for _, a, _ in known)
    offsets = np.array([_logit(rate) for rate, _, _ in known])
    x = np.array([a for _, a, _ in known]) - center
    y = np.array([float(hit) for _, _, hit in known])
    slope = 0.0
    # Newton's method: the log-posterior is concave in the slope, so it converges in a few steps.
    for _ in range(50):
        p = 1 / (1 + np.exp(-(offsets + slope * x)))
        gradient = float(((y - p) * x).sum()) - slope
        curvature = -float((p * (1 - p) * x * x).sum()) - 1.0
        step = gradient / curvature
        slope = min(max(slope - step, -SLOPE_BOUND), SLOPE_BOUND)
        if abs(step) < 1e-6:
            break
    return slope, center


def loo_residual_quartiles(
    values: Sequence[tuple[int, str, float | None]],
) -> tuple[float, float]:
    """Return the quartiles of how far each result lands from its peers' median, left out.

    Each value is compared with the median of the same metric's other values (of all metrics'
    when fewer than two others measured it): the spread a range drawn around the analogs'
    median must have to hold the actual about half the time. Calibrated by leave-one-out on
    the corpus, not chosen by hand. O(n log n): a sorted list's median without one element is
    read off by position.
    """
    present = [(key, v) for _, key, v in values if v is not None]
    if len(present) < 4:
        # Nothing to calibrate on: ±25 % around the median, a stated placeholder.
        return (math.log(0.8), math.log(1.25))
    by_key: dict[str, list[float]] = defaultdict(list)
    for key, v in present:
        by_key[key].append(v)
    everything = sorted(v for _, v in present)
    residuals = []
    for values_of_key in by_key.values():
        peers = sorted(values_of_key)
        for v in values_of_key:
            pool = peers if len(peers) >= 3 else everything
            residuals.append(v - _median_without(pool, bisect.bisect_left(pool, v)))
    q = statistics.quantiles(residuals, n=4, method="inclusive")
    return (q[0], q[2])


def _median_without(ordered: Sequence[float], index: int) -> float:
    """Return the median of a sorted sequence with the element at ``index`` left out."""
    size = len(ordered) - 1

    def at(position: int) -> float:
        return ordered[position if position < index else position + 1]

    middle = size // 2
    return at(middle) if size % 2 else (at(middle - 1) + at(middle)) / 2


@dataclass(slots=True)
class _Cached:
    """One app's corpus rows, valid while the fingerprint of completed campaigns holds."""

    fingerprint: tuple[object, ...]
    rows: list[PriorRow]
    ids: frozenset[int]
    priors: dict[frozenset[int], Prior]


def corpus_prior(exclude: Collection[int] = ()) -> Prior:
    """Return the prior of the completed campaigns in the database, without ``exclude``.

    The rows are cached per app until a campaign changes; the prior is rebuilt only when an
    excluded campaign is among them (a stored campaign's own page, a leave-one-out run).
    """
    fingerprint = tuple(
        db.session.execute(
            sa.select(
                sa.func.count(Campaign.id),
                sa.func.max(Campaign.updated_at),
                sa.func.sum(Campaign.version),
            ).where(Campaign.status == "completed", Campaign.deleted_at.is_(None))
        ).one()
    )
    cached: _Cached | None = current_app.extensions.get("kb.forecast_prior")
    if cached is None or cached.fingerprint != fingerprint:
        rows = rows_of(_stored_metrics())
        cached = _Cached(fingerprint, rows, frozenset(r.campaign_id for r in rows), {})
        current_app.extensions["kb.forecast_prior"] = cached
    relevant = frozenset(exclude) & cached.ids
    if len(cached.rows) >= LARGE_CORPUS_ROWS and len(relevant) * 100 < len(cached.ids):
        # Leaving a few campaigns out of thousands barely moves the overall rates (a small
        # group's rate more); rebuilding for every stored campaign's page would cost ≈ 0.3 s
        # at 10k campaigns, so the full prior serves.
        relevant = frozenset()
    if relevant not in cached.priors:
        if len(cached.priors) > 64:  # a leave-one-out run builds one per campaign
            cached.priors.clear()
        kept = [r for r in cached.rows if r.campaign_id not in relevant]
        cached.priors[relevant] = build_prior(kept)
    return cached.priors[relevant]


def _stored_metrics() -> list[StoredMetric]:
    result = db.session.execute(
        sa.select(
            Campaign.id,
            Campaign.industry,
            Campaign.goal_type,
            Metric.name,
            Metric.unit,
            Metric.baseline,
            Metric.target,
            Metric.actual,
        )
        .join(Metric, Metric.campaign_id == Campaign.id)
        .where(Campaign.status == "completed", Campaign.deleted_at.is_(None))
    )
    return [tuple(row) for row in result]  # type: ignore[misc]


def _shrink(hits: Sequence[bool], parent: float, strength: float) -> BaseRate:
    return BaseRate((sum(hits) + strength * parent) / (len(hits) + strength), len(hits))


def _logit(rate: float) -> float:
    rate = min(max(rate, 1e-6), 1 - 1e-6)
    return math.log(rate / (1 - rate))


def _log_ratio(actual: float, reference: float | None, sign: float) -> float | None:
    if reference is None or reference <= 0 or actual <= 0:
        return None
    value = sign * math.log(actual / reference)
    return value if math.isfinite(value) else None
