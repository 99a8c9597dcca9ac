"""Judge campaigns by every registered rule: metric mappings, stored campaigns, many at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from flask import current_app

from kb.extensions import db
from kb.insights.signals import rules as _rules  # noqa: F401  # registers the built-in rules
from kb.insights.signals.readings import read_metrics
from kb.insights.signals.registry import RULES, Signal, SignalThresholds
from kb.models import Campaign, Metric


def current_thresholds() -> SignalThresholds:
    """Return the thresholds configured for the running app."""
    return SignalThresholds.from_config(current_app.config)


def evaluate(
    metrics: Iterable[Mapping[str, Any]],
    thresholds: SignalThresholds | None = None,
    *,
    finished: bool = True,
    goal_type: str | None = None,
) -> list[Signal]:
    """Return every signal the metrics fire, in rule order.

    ``goal_type`` and the metrics' ``key`` flags choose the key metric the attainment rule judges.

    ``finished``: the campaign is over. Rules marked ``finished_only`` (attainment of target) are
    judged only then; the others compare rates and ratios and are judged on partial numbers too.
    """
    limits = thresholds or SignalThresholds()
    readings = read_metrics(metrics, goal_type)
    found: list[Signal] = []
    for registered in RULES.values():
        if finished or not registered.finished_only:
            found += registered.check(readings, limits)
    if not finished:
        found = [
            replace(s, explanation=s.explanation + "（活动未结束，数据仍在变化）") for s in found
        ]
    return found


def campaign_signals(
    campaign: Campaign, thresholds: SignalThresholds | None = None
) -> list[Signal]:
    """Return the signals of a stored campaign with the app's thresholds."""
    metrics = [_metric_mapping(m) for m in campaign.metrics]
    return evaluate(
        metrics,
        thresholds or current_thresholds(),
        finished=campaign.status == "completed",
        goal_type=campaign.goal_type,
    )


def _metric_mapping(metric: Metric) -> dict[str, Any]:
    return {
        "name": metric.name,
        "unit": metric.unit,
        "catalog_key": metric.catalog_key,
        "baseline": metric.baseline,
        "target": metric.target,
        "actual": metric.actual,
        "key": metric.key,
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
            Campaign.goal_type,
            Metric.name,
            Metric.unit,
            Metric.catalog_key,
            Metric.baseline,
            Metric.target,
            Metric.actual,
            Metric.key,
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
    campaigns: dict[int, tuple[str, str]] = {}
    for row in db.session.execute(query):
        campaigns[row.campaign_id] = (row.status, row.goal_type)
        grouped[row.campaign_id].append(
            {
                "name": row.name,
                "unit": row.unit,
                "catalog_key": row.catalog_key,
                "baseline": row.baseline,
                "target": row.target,
                "actual": row.actual,
                "key": row.key,
            }
        )
    result = {}
    for campaign_id, metrics in grouped.items():
        status, goal_type = campaigns[campaign_id]
        found = evaluate(metrics, limits, finished=status == "completed", goal_type=goal_type)
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
