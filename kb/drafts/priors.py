"""What the whole library says before any analog is looked at: base rates and error widths.

A forecast from a handful of analogs needs two things from the rest of the corpus: how often a
metric of this kind meets its target in campaigns of this goal type (the base rate a hit rate is
shrunk toward), and how far a campaign's result typically lands from what its peers did (the
width of an honest range). Both are computed from completed campaigns, scale-free (log of actual
over the campaign's own target or baseline), and recomputed when the library changes. Centers
and widths exist per metric and per kind of metric (for a metric few analogs measured); a hit
model fitted with a cross-validated penalty says how the way a target was set moves its odds.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from flask import current_app

from kb.campaigns import metrics as catalog
from kb.extensions import db
from kb.models import Campaign, Metric

# Bounds on the beta prior's strength (in pseudo-campaigns). Below 2 a single analog decides;
# above 200 analogs could never move the base rate. Only reached when the fit is degenerate.
STRENGTH_BOUNDS = (2.0, 200.0)
# Ridge strengths the hit model's cross-validation chooses from (log-likelihood units: 0.1
# barely restrains the coefficients, 100 holds them near 0 on a few hundred target metrics).
PENALTIES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
# Folds of the hit model's cross-validation, campaigns kept whole (their metrics move together).
HIT_FOLDS = 10
# Fewer target metrics than this with a known outcome: no hit model, the base rate serves.
MIN_HIT_ROWS = 20
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
    kind: str = ""


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
    ``family_centers`` and ``family_residuals``: the same over every metric of a kind
    (``catalog.KIND_LABELS``), for a metric too few analogs measured themselves.
    """

    centers: dict[str, float]
    overall_center: float
    strength: float
    residuals: tuple[float, float]
    family_centers: dict[str, float] = field(default_factory=dict)
    family_residuals: tuple[float, float] | None = None

    def center(self, key: str) -> float:
        """Return a metric's median log ratio in the corpus, else every metric's."""
        return self.centers.get(key, self.overall_center)

    def family_center(self, kind: str) -> float:
        """Return the median log ratio of a kind of metric in the corpus, else every metric's."""
        return self.family_centers.get(kind, self.overall_center)


@dataclass(frozen=True, slots=True)
class HitModel:
    """How the way a target was set moves the log-odds of meeting it, beyond the base rate.

    A logistic model offset by the base rate of the metric and goal type, on three features of
    the target (``hit_features``): its height over the baseline, whether it asks for no gain
    over the baseline at all, and whether there is no baseline to judge it by. Fitted with a
    ridge penalty that cross-validation over the corpus' campaigns chooses (``fit_hit_model``);
    all zero, the base rate is returned unchanged.
    """

    intercept: float = 0.0
    coefficients: tuple[float, float, float] = (0.0, 0.0, 0.0)
    penalty: float | None = None

    def probability(self, rate: float, ambition: float | None) -> float:
        """Return the base rate moved by this target's features."""
        if self.penalty is None:
            return rate
        shift = self.intercept + sum(
            c * x for c, x in zip(self.coefficients, hit_features(ambition), strict=True)
        )
        return _sigmoid(_logit(rate) + shift)


@dataclass(frozen=True, slots=True)
class Prior:
    """Corpus-wide base rates, and the centers and widths of a forecast range (log ratios)."""

    overall: BaseRate
    by_key: dict[str, BaseRate]
    by_key_goal: dict[tuple[str, str], BaseRate]
    strength: float
    attainment: RatioPrior
    lift: RatioPrior
    # How the way a target was set moves the odds of meeting it (fitted).
    hit_model: HitModel = field(default_factory=HitModel)

    def adjusted(self, rate: float, ambition: float | None) -> float:
        """Return a base rate moved by the fitted effect of how the target was set."""
        return self.hit_model.probability(rate, ambition)

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
        found = catalog.resolve(name, unit)
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
                kind=found.metric.kind,
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
    # Metrics outside the catalog carry the kind their unit and wording gave them.
    kinds = {r.key: r.kind for r in rows if r.kind}
    hit_model = fit_hit_model(
        with_target,
        _held_out_base_rates(with_target, strength),
        [r.campaign_id for r in with_target],
    )
    return Prior(
        overall=BaseRate(overall_rate, len(with_target)),
        by_key=by_key,
        by_key_goal=by_key_goal,
        strength=strength,
        attainment=ratio_prior([(r.key, r.goal_type, r.log_attainment) for r in rows], kinds),
        lift=ratio_prior([(r.key, r.goal_type, r.log_lift) for r in rows], kinds),
        hit_model=hit_model,
    )


def ratio_prior(
    values: Sequence[tuple[str, str, float | None]], kinds: Mapping[str, str] | None = None
) -> RatioPrior:
    """Fit the centers, center strength and range width of (metric, goal type, log ratio).

    ``kinds``: the kind of metrics the catalog does not know (else ``family_of`` says).
    """
    kinds = kinds or {}
    present = [(key, goal, v) for key, goal, v in values if v is not None]
    by_key: dict[str, list[float]] = defaultdict(list)
    by_group: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, goal, v in present:
        by_key[key].append(v)
        by_group[(key, goal)].append(v)
    centers = {key: statistics.median(vs) for key, vs in by_key.items()}
    by_family: dict[str, list[float]] = defaultdict(list)
    for key, _, v in present:
        by_family[kinds.get(key) or family_of(key)].append(v)
    return RatioPrior(
        centers=centers,
        overall_center=statistics.median(v for _, _, v in present) if present else 0.0,
        strength=fit_center_strength(
            [[v - centers[key] for v in vs] for (key, _), vs in by_group.items()]
        ),
        residuals=loo_residual_quartiles([(0, key, v) for key, _, v in present]),
        family_centers={kind: statistics.median(vs) for kind, vs in by_family.items()},
        family_residuals=loo_residual_quartiles(
            [(0, kinds.get(key) or family_of(key), v) for key, _, v in present]
        ),
    )


def family_of(key: str) -> str:
    """Return the kind a catalog metric belongs to (the key itself when it is not known)."""
    entry = catalog.by_key(key)
    return entry.kind if entry is not None else key


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
    means = [statistics.fmean(g) for g in sized]  # once per group: the sum below is linear
    within = sum((v - mean) ** 2 for g, mean in zip(sized, means, strict=True) for v in g)
    freedom = sum(len(g) - 1 for g in sized)
    sigma2 = within / freedom if freedom else 0.0
    tau2 = statistics.fmean(mean**2 - sigma2 / len(g) for g, mean in zip(sized, means, strict=True))
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


def hit_features(ambition: float | None) -> tuple[float, float, float]:
    """Return a target's features: its clipped ambition, "no gain asked", "no baseline".

    A target at or below its baseline asks for no improvement (teams set one when they expect
    the metric to fall), which a single slope on ambition cannot tell from a modest target.
    """
    if ambition is None:
        return (0.0, 0.0, 1.0)
    return (clip_ambition(ambition), float(ambition <= 0), 0.0)


def fit_hit_model(
    rows: Sequence[PriorRow], base_rates: Sequence[float], groups: Sequence[int]
) -> HitModel:
    """Fit the hit model on target metrics with a known outcome, offset by their base rates.

    ``base_rates``: each row's base rate as a draft would have seen it (its own campaign left
    out); ``groups``: each row's campaign. The ridge penalty is the one of ``PENALTIES`` with
    the best held-out log-likelihood over ``HIT_FOLDS`` folds of whole campaigns; then the
    model is refitted on every row with it. Too few rows or campaigns: the empty model.
    """
    campaigns = sorted(set(groups))
    if len(rows) < MIN_HIT_ROWS or len(campaigns) < 3:
        return HitModel()
    features = np.array([hit_features(r.ambition) for r in rows])
    design = np.hstack([np.ones((len(rows), 1)), features])
    offsets = np.array([_logit(rate) for rate in base_rates])
    outcomes = np.array([float(bool(r.hit)) for r in rows])
    position = {campaign: i for i, campaign in enumerate(campaigns)}
    folds = np.array([position[g] % min(HIT_FOLDS, len(campaigns)) for g in groups])

    def held_out_loss(penalty: float) -> float:
        loss = 0.0
        for fold in np.unique(folds):
            train = folds != fold
            beta = _fit_logistic(design[train], offsets[train], outcomes[train], penalty)
            p = np.clip(_sigmoid_array(offsets[~train] + design[~train] @ beta), 1e-9, 1 - 1e-9)
            y = outcomes[~train]
            loss -= float((y * np.log(p) + (1 - y) * np.log(1 - p)).sum())
        return loss

    # The strongest penalty among equals: a corpus without an effect keeps the base rate.
    penalty = min(reversed(PENALTIES), key=held_out_loss)
    beta = _fit_logistic(design, offsets, outcomes, penalty)
    return HitModel(float(beta[0]), (float(beta[1]), float(beta[2]), float(beta[3])), penalty)


def _fit_logistic(
    design: np.ndarray, offsets: np.ndarray, outcomes: np.ndarray, penalty: float
) -> np.ndarray:
    """Return ridge-penalized logistic coefficients (the first column, the intercept, free)."""
    beta = np.zeros(design.shape[1])
    ridge = np.eye(design.shape[1]) * penalty
    ridge[0, 0] = 0.0
    # Newton's method: the penalized log-likelihood is concave, a few steps converge.
    for _ in range(50):
        p = _sigmoid_array(offsets + design @ beta)
        gradient = design.T @ (outcomes - p) - ridge @ beta
        curvature = (design.T * (p * (1 - p))) @ design + ridge + np.eye(len(beta)) * 1e-9
        step = np.linalg.solve(curvature, gradient)
        beta = beta + step
        if float(np.abs(step).max()) < 1e-8:
            break
    return beta


def _held_out_base_rates(rows: Sequence[PriorRow], strength: float) -> list[float]:
    """Return each row's metric-and-goal base rate computed without its own campaign.

    The hit model is fitted against the base rate a draft sees, which never includes the
    draft; counting a row's own outcome in its offset would make the base rate look better
    than it is. Same shrinkage as ``build_prior``, counts minus the campaign's own
    (vectorized: 50k rows in a few tens of milliseconds).
    """
    if not rows:
        return []
    hits = np.array([float(bool(r.hit)) for r in rows])
    campaign = _codes([r.campaign_id for r in rows])
    key = _codes([r.key for r in rows])
    group = _codes([(r.key, r.goal_type) for r in rows])

    def totals(*labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return per row the hits and rows sharing all its labels."""
        _, inverse = np.unique(np.stack(labels, axis=1), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        return np.bincount(inverse, weights=hits)[inverse], np.bincount(inverse)[inverse]

    zeros = np.zeros(len(rows), dtype=np.int64)
    all_hits, all_n = totals(zeros)
    key_hits, key_n = totals(key)
    group_hits, group_n = totals(group)
    own_hits, own_n = totals(campaign)
    own_key_hits, own_key_n = totals(campaign, key)
    own_group_hits, own_group_n = totals(campaign, group)
    overall = (all_hits - own_hits + 0.5) / (all_n - own_n + 1)
    key_rate = (key_hits - own_key_hits + strength * overall) / (key_n - own_key_n + strength)
    rates = (group_hits - own_group_hits + strength * key_rate) / (group_n - own_group_n + strength)
    return [float(rate) for rate in rates]


def _codes(labels: Sequence[object]) -> np.ndarray:
    """Return an integer code per label (equal labels, equal codes)."""
    seen: dict[object, int] = {}
    return np.array([seen.setdefault(label, len(seen)) for label in labels], dtype=np.int64)


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


def _sigmoid(value: float) -> float:
    return 1 / (1 + math.exp(-min(max(value, -50.0), 50.0)))


def _sigmoid_array(values: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1 / (1 + np.exp(-np.clip(values, -50.0, 50.0)))
    return result


def _logit(rate: float) -> float:
    rate = min(max(rate, 1e-6), 1 - 1e-6)
    return math.log(rate / (1 - rate))


def _log_ratio(actual: float, reference: float | None, sign: float) -> float | None:
    if reference is None:
        return None
    value = log_ratio(actual, reference)
    return None if value is None else sign * value


def log_ratio(value: float, reference: float) -> float | None:
    """Return ln(value / reference); None unless both are positive and the ratio is a number.

    Stored figures can be as extreme as a float allows (a target of 5e-324 against a baseline of
    1e10): their ratio underflows to 0 or overflows, and one such record must not take down
    every forecast that reads the corpus.
    """
    if not (value > 0 and reference > 0):
        return None
    ratio = value / reference
    if not (0 < ratio < math.inf):
        return None
    return math.log(ratio)
