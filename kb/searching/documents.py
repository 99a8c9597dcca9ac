"""Turn a stored campaign into the plain ``CampaignText`` the search indexes read."""

from __future__ import annotations

from kb import parsing
from kb.campaigns import metrics as metric_catalog
from kb.campaigns.serialize import metric_to_dict
from kb.models import Campaign, Metric
from kb.vocab import HYPOTHESIS_RESULTS
from search.documents import CampaignText, MetricFact


def metric_fact(metric: Metric) -> MetricFact:
    """Return a stored metric with its assessment, as search and forecasts read it."""
    m = metric_to_dict(metric)
    return MetricFact(
        name=m["name"],
        key=m["catalog_key"],
        direction=m["direction"],
        baseline=m["baseline"],
        target=m["target"],
        actual=m["actual"],
        attainment_pct=m["attainment_pct"],
        lift_pct=m["lift_pct"],
        hit=m["hit"],
        is_key=m["is_key"],
        base_scale=base_scale(m["unit"] or "", m["catalog_key"]),
    )


def base_scale(unit: str, catalog_key: str | None) -> float | None:
    """Return the factor to a metric's base unit (kb.parsing.base_scale), ROI's base being 倍.

    A ratio metric written in % (ROI 350 %) is 3.5 倍, as ROI 1:3.5 and 3.5 倍 are; rates stay in %.
    """
    scale = parsing.base_scale(unit)
    entry = metric_catalog.by_key(catalog_key) if catalog_key else None
    if (
        scale is not None
        and entry is not None
        and entry.kind != "rate"
        and metric_catalog.blank_unit(entry) == "ratio"
        and parsing.read_unit(unit).dimension == "percent"
    ):
        return scale / 100
    return scale


def campaign_text(campaign: Campaign) -> CampaignText:
    """Return the campaign as search sees it (facts, weighted text, metric outcomes)."""
    metrics = tuple(metric_fact(metric) for metric in campaign.metrics)
    rewards = "；".join(
        f"{r.type} {r.detail}{' 可叠加' if r.stackable else ''}".strip() for r in campaign.rewards
    )
    hypotheses = "\n".join(
        f"{h.statement}（{HYPOTHESIS_RESULTS.get(h.result, h.result)}）{h.evidence}"
        for h in campaign.hypotheses
    )
    return CampaignText(
        id=campaign.id,
        version=campaign.version,
        title=campaign.title,
        industry=campaign.industry,
        department=campaign.department,
        business_line=campaign.business_line,
        goal_type=campaign.goal_type,
        status=campaign.status,
        start_date=campaign.start_date,
        end_date=campaign.end_date,
        budget_cny=campaign.budget_cny,
        audience=tuple(campaign.audience),
        products=tuple(campaign.products),
        channels=tuple(campaign.channels),
        reward_types=tuple(dict.fromkeys(r.type for r in campaign.rewards)),
        tags=tuple(campaign.tags),
        goal=campaign.goal,
        rewards_text=rewards,
        summary=campaign.summary,
        went_well=campaign.went_well,
        problems=campaign.problems,
        lessons=campaign.lessons,
        recommendations=campaign.recommendations,
        hypotheses=hypotheses,
        documents=tuple((d.title, d.body) for d in campaign.documents),
        metrics=metrics,
    )
