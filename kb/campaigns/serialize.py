"""The API's shape of a campaign (``CampaignOut``) and how a stored campaign becomes it.

Adding a field to an answer is one line in its ``*Out`` model plus where it is filled in; a
missing or misspelt field is a type error (mypy) and a validation error.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from kb.campaigns import metrics as metric_catalog
from kb.campaigns.key_metric import is_key_metric
from kb.campaigns.schemas import DocumentIn, HypothesisIn, RewardIn
from kb.models import Campaign, Metric
from kb.vocab import GoalType, Status

# A stored timestamp (timezone-aware UTC), answered as ``datetime.isoformat()`` ("+00:00").
Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Out(BaseModel):
    """An answer of the API: built by us, so an unknown field is a bug, never data."""

    model_config = ConfigDict(extra="forbid")


class MetricOut(Out):
    """A stored metric with its catalog key and assessment (percentages, rounded to 0.1)."""

    name: str
    unit: str
    baseline: float | None
    target: float | None
    actual: float | None
    catalog_key: str | None
    direction: str | None
    attainment_pct: float | None
    lift_pct: float | None
    hit: bool | None
    # key: the author chose it as the key metric; is_key: it is the key metric (chosen, or
    # picked by goal type when none was chosen; see kb.campaigns.key_metric).
    key: bool
    is_key: bool


class CampaignOut(Out):
    """A stored campaign as the API returns it."""

    id: int
    version: int
    title: str
    industry: str
    department: str
    business_line: str | None
    goal_type: GoalType
    goal: str
    audience: list[str]
    products: list[str]
    rewards: list[RewardIn]
    channels: list[str]
    start_date: date
    end_date: date
    status: Status
    budget_cny: float | None
    metrics: list[MetricOut]
    summary: str
    went_well: str
    problems: str
    lessons: str
    recommendations: str
    hypotheses: list[HypothesisIn]
    documents: list[DocumentIn]
    tags: list[str]
    external_id: str | None
    created_at: Timestamp
    updated_at: Timestamp
    deleted_at: Timestamp | None


class CampaignList(Out):
    """One page of campaigns."""

    items: list[CampaignOut]
    total: int
    page: int
    per_page: int
    pages: int


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
        "key": bool(metric.key),
        "is_key": is_key_metric(metric),
    }


def metric_out(metric: Metric) -> MetricOut:
    """Return a metric in the API shape."""
    return MetricOut.model_validate(metric_to_dict(metric))


def campaign_out(campaign: Campaign) -> CampaignOut:
    """Return the campaign in the API shape: the input fields plus id, version and timestamps."""
    return CampaignOut(
        id=campaign.id,
        version=campaign.version,
        title=campaign.title,
        industry=campaign.industry,
        department=campaign.department,
        business_line=campaign.business_line,
        goal_type=campaign.goal_type,
        goal=campaign.goal,
        audience=list(campaign.audience),
        products=list(campaign.products),
        # Stored rows were validated when written: constructed as they are, so that an input
        # rule tightened later never makes an old campaign unanswerable.
        rewards=[
            RewardIn.model_construct(type=r.type, detail=r.detail, stackable=r.stackable)
            for r in campaign.rewards
        ],
        channels=list(campaign.channels),
        start_date=campaign.start_date,
        end_date=campaign.end_date,
        status=campaign.status,
        budget_cny=campaign.budget_cny,
        metrics=[metric_out(m) for m in campaign.metrics],
        summary=campaign.summary,
        went_well=campaign.went_well,
        problems=campaign.problems,
        lessons=campaign.lessons,
        recommendations=campaign.recommendations,
        hypotheses=[
            HypothesisIn.model_construct(
                statement=h.statement,
                result=h.result,  # type: ignore[arg-type]  # validated when stored
                evidence=h.evidence,
            )
            for h in campaign.hypotheses
        ],
        documents=[
            DocumentIn.model_construct(
                title=d.title,
                kind=d.kind,  # type: ignore[arg-type]  # validated when stored
                body=d.body,
            )
            for d in campaign.documents
        ],
        tags=list(campaign.tags),
        external_id=campaign.external_id,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        deleted_at=campaign.deleted_at,
    )


def campaign_to_dict(campaign: Campaign) -> dict[str, Any]:
    """Return the campaign in the API shape as plain JSON values (exports, tests)."""
    return campaign_out(campaign).model_dump(mode="json")


def campaign_to_input(campaign: Campaign) -> dict[str, Any]:
    """Return the campaign as the fields a client writes (the input schema's shape)."""
    data = campaign_to_dict(campaign)
    for key in ("id", "version", "created_at", "updated_at", "deleted_at"):
        del data[key]
    data["metrics"] = [{key: m[key] for key in _METRIC_INPUT} for m in data["metrics"]]
    return data


_METRIC_INPUT = ("name", "unit", "baseline", "target", "actual", "key")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
