"""The portfolio: every campaign of a period at once, by goal, audience and month.

"Every campaign reports success but the total does not move" happens when they all hit the same
users. The portfolio shows which campaigns ran when, how many of them hit each audience segment
each month (crowding), per goal type how many there were, what they cost, how many hit their key
metric and the median attainment, the segments nobody reached, and the warning signals.

Definitions (the page says them too):

- A campaign is in the period when it ran on at least one day of it; its whole budget counts
  (budgets are not prorated by day). Cancelled campaigns are left out and counted apart.
- The key metric of a campaign is the one its goal is judged by (kb.campaigns.key_metric: the
  author's choice, else the metric matching the goal type, else the first with a target).
  Hit share and median attainment are over completed campaigns whose key metric has an actual;
  planned and running campaigns are in progress, never missed.
- Reward spend is known only when a campaign reports it as a metric (券成本, 奖励成本, 红包发放金额,
  补贴金额… in 元 / 万元 / 亿元); otherwise it is unknown, never estimated from the budget.
- Segments are compared folded (寶媽 = 宝妈) with the audience synonyms of kb.campaigns.segments. The
  segments "nobody reached" are those any live campaign ever targeted (within the business line,
  when one is chosen) that no campaign in the period and goal type targets.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from kb import vocab as labels
from kb.campaigns import key_metric as key_metrics
from kb.campaigns.key_metric import KeyMetric as KeyMetric  # re-exported: the pages' and API's name
from kb.campaigns.segments import segment_key
from kb.extensions import db
from kb.insights.signals import Signal, SignalThresholds, signal_codes, signals_by_campaign
from kb.models import Campaign, Metric
from search.normalize import normalize

# A segment hit by at least this many campaigns in one month is marked as crowded.
CROWDED_AT = 3
# The heat map's width: longer periods are refused (60 columns is what a page can show).
MAX_MONTHS = 60

# Metric names that report what the rewards actually cost (matched folded, anywhere in the name).
_REWARD_SPEND = re.compile(
    r"券成本|用券成本|奖励成本|奖励发放|红包发放|红包成本|补贴金额|补贴成本|优惠成本|让利金额|"
    r"积分成本|赠品成本|reward cost|coupon cost|incentive (cost|spend)|subsid(y|ies)"
)
_CNY_SCALE = {
    "元": 1.0,
    "千元": 1e3,
    "万元": 1e4,
    "百万元": 1e6,
    "亿元": 1e8,
    "cny": 1.0,
    "rmb": 1.0,
}


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """One campaign of the portfolio."""

    id: int
    title: str
    goal_type: str
    status: str
    start_date: date
    end_date: date
    business_line: str | None
    audience: list[str]
    budget_cny: float | None
    reward_spend_cny: float | None
    key_metric: KeyMetric | None
    signals: list[Signal]


@dataclass(frozen=True, slots=True)
class GoalSummary:
    """The campaigns of one goal type (or all of them): count, money and results."""

    goal_type: str | None  # None for the total row
    label: str
    campaigns: int
    budget_cny: float | None  # None: the budgets add up past a float
    budget_known: int
    reward_spend_cny: float | None
    reward_spend_known: int
    judged: int  # completed campaigns whose key metric has a verdict
    hit: int
    hit_share_pct: float | None
    median_attainment_pct: float | None
    attainment_n: int


@dataclass(frozen=True, slots=True)
class Crowding:
    """How many campaigns hit each segment in each month: ``counts[segment][month]``."""

    segments: list[str]
    months: list[str]
    counts: list[list[int]]
    crowded_at: int = CROWDED_AT


@dataclass(frozen=True, slots=True)
class Portfolio:
    """Everything the portfolio page and API show for one period and filter."""

    date_from: date
    date_to: date
    goal_type: str | None
    business_line: str | None
    campaigns: list[CampaignRow]
    crowding: Crowding
    goals: list[GoalSummary]
    total: GoalSummary
    uncovered_segments: list[str]
    signal_counts: dict[str, int]
    excluded_cancelled: int
    business_lines: list[str] = field(default_factory=list)


def default_period(today: date) -> tuple[date, date]:
    """Return last year and this year: what was done and what is planned, side by side."""
    return date(today.year - 1, 1, 1), date(today.year, 12, 31)


def month_keys(start: date, end: date) -> list[str]:
    """Return the months from ``start`` to ``end`` inclusive as "2024-01"."""
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def build_portfolio(
    date_from: date,
    date_to: date,
    *,
    goal_type: str | None = None,
    business_line: str | None = None,
    thresholds: SignalThresholds | None = None,
) -> Portfolio:
    """Return the portfolio of live campaigns that ran in the period, filtered."""
    conditions = [
        Campaign.deleted_at.is_(None),
        Campaign.end_date >= date_from,
        Campaign.start_date <= date_to,
    ]
    if goal_type:
        conditions.append(Campaign.goal_type == goal_type)
    if business_line:
        conditions.append(Campaign.business_line == business_line)
    rows = db.session.scalars(
        sa.select(Campaign)
        .where(*conditions)
        .options(selectinload(Campaign.metrics))
        .order_by(Campaign.start_date, Campaign.id)
    ).all()
    cancelled = sum(1 for c in rows if c.status == "cancelled")
    live = [c for c in rows if c.status != "cancelled"]
    found = signals_by_campaign([c.id for c in live], thresholds)
    campaigns = [_row(c, found.get(c.id, [])) for c in live]

    labels_by_key = _segment_labels(business_line)
    months = month_keys(date_from, date_to)
    crowding = _crowding(campaigns, months, date_from, date_to, labels_by_key)
    reached = {segment_key(a) for c in campaigns for a in c.audience}
    uncovered = sorted(
        (label for key, label in labels_by_key.items() if key not in reached),
        key=lambda label: normalize(label)[0],
    )
    by_goal: dict[str, list[CampaignRow]] = defaultdict(list)
    for row in campaigns:
        by_goal[row.goal_type].append(row)
    goals = [
        _summary(goal, labels.GOAL_TYPES.get(goal, goal), by_goal[goal])
        for goal in (*labels.GOAL_TYPES, *sorted(set(by_goal) - set(labels.GOAL_TYPES)))
        if by_goal.get(goal)
    ]
    # Campaigns per signal (a campaign with two cost signals counts once).
    counts: Counter[str] = Counter(
        code for row in campaigns for code in {s.code for s in row.signals}
    )
    return Portfolio(
        date_from=date_from,
        date_to=date_to,
        goal_type=goal_type,
        business_line=business_line,
        campaigns=campaigns,
        crowding=crowding,
        goals=goals,
        total=_summary(None, "合计", campaigns),
        uncovered_segments=uncovered,
        signal_counts={code: counts.get(code, 0) for code in signal_codes()},
        excluded_cancelled=cancelled,
        business_lines=_business_lines(),
    )


def key_metric(metrics: list[Metric]) -> KeyMetric | None:
    """Return the key metric of the campaign these metrics belong to (see kb.campaigns.key_metric)."""
    return key_metrics.key_metric(metrics[0].campaign) if metrics else None


def reward_spend_cny(metrics: list[Metric]) -> float | None:
    """Return the reward cost a campaign reports as metrics, in yuan; None when it reports none."""
    total = None
    for metric in metrics:
        if metric.actual is None or not _REWARD_SPEND.search(normalize(metric.name)[0]):
            continue
        scale = _CNY_SCALE.get(re.sub(r"\s+", "", normalize(metric.unit)[0]))
        if scale is None:
            continue  # a cost in an unknown unit cannot be added up honestly
        total = (total or 0.0) + metric.actual * scale
    return _finite(total)


def _row(campaign: Campaign, found: list[Signal]) -> CampaignRow:
    return CampaignRow(
        id=campaign.id,
        title=campaign.title,
        goal_type=campaign.goal_type,
        status=campaign.status,
        start_date=campaign.start_date,
        end_date=campaign.end_date,
        business_line=campaign.business_line,
        audience=list(campaign.audience),
        budget_cny=campaign.budget_cny,
        reward_spend_cny=reward_spend_cny(campaign.metrics),
        key_metric=key_metrics.key_metric(campaign),
        signals=found,
    )


def _summary(goal_type: str | None, label: str, rows: list[CampaignRow]) -> GoalSummary:
    budgets = [r.budget_cny for r in rows if r.budget_cny is not None]
    spends = [r.reward_spend_cny for r in rows if r.reward_spend_cny is not None]
    judged = [
        r.key_metric
        for r in rows
        if r.status == "completed" and r.key_metric is not None and r.key_metric.hit is not None
    ]
    attainments = [k.attainment_pct for k in judged if k.attainment_pct is not None]
    hits = sum(1 for k in judged if k.hit)
    return GoalSummary(
        goal_type=goal_type,
        label=label,
        campaigns=len(rows),
        budget_cny=_finite(sum(budgets)),
        budget_known=len(budgets),
        reward_spend_cny=_finite(sum(spends)) if spends else None,
        reward_spend_known=len(spends),
        judged=len(judged),
        hit=hits,
        hit_share_pct=round(hits / len(judged) * 100, 1) if judged else None,
        median_attainment_pct=_finite(round(statistics.median(attainments), 1))
        if attainments
        else None,
        attainment_n=len(attainments),
    )


def _finite(value: float | None) -> float | None:
    # Finite numbers can add up past a float (two budgets of 1e308): unknown, not Infinity.
    return value if value is not None and math.isfinite(value) else None


def _crowding(
    rows: list[CampaignRow],
    months: list[str],
    date_from: date,
    date_to: date,
    labels_by_key: dict[str, str],
) -> Crowding:
    index = {month: i for i, month in enumerate(months)}
    counts: dict[str, list[int]] = {}
    for row in rows:
        start, end = max(row.start_date, date_from), min(row.end_date, date_to)
        active = [index[m] for m in month_keys(start, end) if m in index]
        for key in dict.fromkeys(segment_key(a) for a in row.audience):
            line = counts.setdefault(key, [0] * len(months))
            for i in active:
                line[i] += 1
    # Busiest segments first: the crowding is what the map is for.
    order = sorted(counts, key=lambda k: (-sum(counts[k]), -max(counts[k], default=0), k))
    return Crowding(
        segments=[labels_by_key.get(k, k) for k in order],
        months=months,
        counts=[counts[k] for k in order],
    )


def _segment_labels(business_line: str | None) -> dict[str, str]:
    """Return every segment key any live campaign targets, with its most common spelling."""
    query = sa.select(Campaign.audience).where(
        Campaign.deleted_at.is_(None), Campaign.status != "cancelled"
    )
    if business_line:
        query = query.where(Campaign.business_line == business_line)
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for (audience,) in db.session.execute(query):
        for label in audience or []:
            spellings[segment_key(label)][label] += 1
    # Most used spelling first; on a tie the Simplified, half-width one (宝妈 before 寶媽).
    return {
        key: min(counter, key=lambda label: (-counter[label], normalize(label)[0] != label.lower()))
        for key, counter in spellings.items()
    }


def _business_lines() -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Campaign.business_line)
            .where(Campaign.deleted_at.is_(None), Campaign.business_line.is_not(None))
            .distinct()
            .order_by(Campaign.business_line)
        )
    )
