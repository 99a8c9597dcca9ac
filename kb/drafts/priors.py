"""What the whole library says before any analog is looked at: base rates and error widths.

A forecast from a handful of analogs needs two things from the rest of the corpus: how often a
metric of this kind meets its target in campaigns of this goal type (the base rate a hit rate is
shrunk toward), and how far a campaign's result typically lands from what its peers did (the
width of an honest range). Both are computed from completed campaigns, scale-free (log of actual
over the campaign's own target or baseline), and recomputed when the library changes.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from kb.campaigns import metrics as catalog
from kb.extensions import db
from kb.models import Campaign, Metric

# Bounds on the beta prior's strength (in pseudo-campaigns). Below 2 a single analog decides;
# above 200 analogs could never move the base rate. Only reached when the fit is degenerate.
STRENGTH_BOUNDS = (2.0, 200.0)


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
class Prior:
    """Corpus-wide base rates and the calibrated widths of a forecast range (log ratios)."""

    overall: BaseRate
    by_key: dict[str, BaseRate]
    by_key_goal: dict[tuple[str, str], BaseRate]
    strength: float
    attainment_residuals: tuple[float, float]
    lift_residuals: tuple[float, float]
    # How a target's height over its baseline moves the odds of meeting it (fitted).
    ambition_slope: float = 0.0
    ambition_center: float = 0.0

    def adjusted(self, rate: float, ambition: float | None) -> float:
        """Return a base rate moved by the fitted effect of the target's height over baseline."""
        if ambition is None or not self.ambition_slope:
            return rate
        rate = min(max(rate, 1e-6), 1 - 1e-6)
        logit = math.log(rate / (1 - rate))
        logit += self.ambition_slope * (clip_ambition(ambition) - self.ambition_center)
        return 1 / (1 + math.exp(-logit))

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
        attainment_residuals=loo_residual_quartiles(
            [(r.campaign_id, r.key, r.log_attainment) for r in rows]
        ),
        lift_residuals=loo_residual_quartiles([(r.campaign_id, r.key, r.log_lift) for r in rows]),
        ambition_slope=slope,
        ambition_center=center,
    )


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
    offsets = [math.log(min(max(r, 1e-6), 1 - 1e-6) / (1 - min(max(r, 1e-6), 1 - 1e-6)))
               for r, _, _ in known]  # fmt: skip

    def log_posterior(slope: float) -> float:
        total = -slope * slope / 2
        for offset, (_, a, hit) in zip(offsets, known, strict=True):
            z = offset + slope * (a - center)
            total += -math.log1p(math.exp(-z)) if hit else -math.log1p(math.exp(z))
        return total

    # A grid is enough for one bounded parameter and cannot fail to converge.
    best = max((step / 20 for step in range(-100, 101)), key=log_posterior)
    return best, center


def loo_residual_quartiles(
    values: Sequence[tuple[int, str, float | None]],
) -> tuple[float, float]:
    """Return the quartiles of how far each result lands from its peers' median, left out.

    Each value is compared with the median of the same metric in the other campaigns (all
    metrics' when fewer than two others measured it): the spread a range drawn around the
    analogs' median must have to hold the actual about half the time. Calibrated by
    leave-one-out on the corpus, not chosen by hand.
    """
    present = [(cid, key, v) for cid, key, v in values if v is not None]
    if len(present) < 4:
        # Nothing to calibrate on: ±25 % around the median, said to be a placeholder.
        return (math.log(0.8), math.log(1.25))
    by_key: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for cid, key, v in present:
        by_key[key].append((cid, v))
    residuals = []
    for cid, key, v in present:
        peers = [p for other, p in by_key[key] if other != cid]
        if len(peers) < 2:
            peers = [p for other, _, p in present if other != cid]
        residuals.append(v - statistics.median(peers))
    q = statistics.quantiles(residuals, n=4, method="inclusive")
    return (q[0], q[2])


def corpus_prior(exclude: Collection[int] = ()) -> Prior:
    """Return the prior of the completed campaigns in the database, without ``exclude``.

    The rows are cached per app until a campaign changes; the prior is rebuilt only when an
    excluded campaign is among them (a stored campaign's own page, a leave-one-out run).
    """
    cache: dict[object, object] = current_app.extensions.setdefault("kb.forecast_prior", {})
    fingerprint = db.session.execute(
        sa.select(
            sa.func.count(Campaign.id),
            sa.func.max(Campaign.updated_at),
            sa.func.sum(Campaign.version),
        ).where(Campaign.status == "completed", Campaign.deleted_at.is_(None))
    ).one()
    key = tuple(fingerprint)
    if cache.get("fingerprint") != key:
        cache.clear()
        cache["fingerprint"] = key
        cache["rows"] = rows_of(_stored_metrics())
        cache["priors"] = {}
    rows: list[PriorRow] = cache["rows"]  # type: ignore[assignment]
    priors: dict[frozenset[int], Prior] = cache["priors"]  # type: ignore[assignment]
    relevant = frozenset(exclude) & {r.campaign_id for r in rows}
    if relevant not in priors:
        if len(priors) > 64:  # a leave-one-out run builds one per campaign: keep memory flat
            priors.clear()
        priors[relevant] = build_prior([r for r in rows if r.campaign_id not in relevant])
    return priors[relevant]


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


def _log_ratio(actual: float, reference: float | None, sign: float) -> float | None:
    if reference is None or reference <= 0 or actual <= 0:
        return None
    value = sign * math.log(actual / reference)
    return value if math.isfinite(value) else None
