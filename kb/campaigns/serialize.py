"""Turn stored campaigns into the API's JSON shape, with each metric's assessment."""

from __future__ import annotations

from typing import Any

from kb.campaigns import metrics as metric_catalog
from kb.models import Campaign, Metric


def metric_to_dict(metric: Metric) -> dict[str, Any]:
    """Return a metric as given, plus its catalog key, direction, attainment, lift and hit."""
    entry = metric_catalog.by_key(metric.catalog_key) if metric.catalog_key else None
    # Unknown metrics are assumed higher-is-better, the common case, and marked as uncatalogued.
    direction: metric_catalog.Direction = entry.direction if entry else "higher"
    outcome = metric_catalog.assess(direction, metric.baseline, metric.target, metric.actual)
    return {
        "name": metric.name,
        "unit": metric.unit,
        "baseline": metric.baseline,
        "target": metric.target,
        "actual": metric.actual,
        "catalog_key": metric.catalog_key,
        "direction": direction if entry else None,
        "attainment_pct": _round(outcome.attainment_pct),
        "lift_pct": _round(outcome.lift_pct),
        "hit": outcome.hit,
    }


def campaign_to_dict(campaign: Campaign) -> dict[str, Any]:
    """Return the campaign in the API shape: the input fields plus id, version and timestamps."""
    return {
        "id": campaign.id,
        "version": campaign.version,
        "title": campaign.title,
        "industry": campaign.industry,
        "department": campaign.department,
        "business_line": campaign.business_line,
        "goal_type": campaign.goal_type,
        "goal": campaign.goal,
        "audience": list(campaign.audience),
        "products": list(campaign.products),
        "rewards": [
            {"type": r.type, "detail": r.detail, "stackable": r.stackable} for r in campaign.rewards
        ],
        "channels": list(campaign.channels),
        "start_date": campaign.start_date.isoformat(),
        "end_date": campaign.end_date.isoformat(),
        "status": campaign.status,
        "budget_cny": campaign.budget_cny,
        "metrics": [metric_to_dict(m) for m in campaign.metrics],
        "summary": campaign.summary,
        "went_well": campaign.went_well,
        "problems": campaign.problems,
        "lessons": campaign.lessons,
        "recommendations": campaign.recommendations,
        "hypotheses": [
            {"statement": h.statement, "result": h.result, "evidence": h.evidence}
            for h in campaign.hypotheses
        ],
        "documents": [
            {"title": d.title, "kind": d.kind, "body": d.body} for d in campaign.documents
        ],
        "tags": list(campaign.tags),
        "external_id": campaign.external_id,
        "created_at": campaign.created_at.isoformat(),
        "updated_at": campaign.updated_at.isoformat(),
        "deleted_at": campaign.deleted_at.isoformat() if campaign.deleted_at else None,
    }


def campaign_to_input(campaign: Campaign) -> dict[str, Any]:
    """Return the campaign as the fields a client writes (the input schema's shape)."""
    data = campaign_to_dict(campaign)
    for key in ("id", "version", "created_at", "updated_at", "deleted_at"):
        del data[key]
    data["metrics"] = [{key: m[key] for key in _METRIC_INPUT} for m in data["metrics"]]
    return data


_METRIC_INPUT = ("name", "unit", "baseline", "target", "actual")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
