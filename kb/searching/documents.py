"""Turn a stored campaign into the plain ``CampaignText`` the search indexes read."""

from __future__ import annotations

from functools import lru_cache

from kb import parsing
from kb.campaigns import metrics as metric_catalog
from kb.campaigns.key_metric import choose
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


def metric_facts(campaign: Campaign) -> tuple[MetricFact, ...]:
    """Return the campaign's metrics as ``metric_fact`` returns each, its key metric chosen once.

    ``metric_fact`` (through ``metric_to_dict``) chooses the key metric among all the campaign's
    metrics for every metric, folding their names each time: m² work per campaign. An outcome
    query assesses ≈ 200 campaigns of the 10k bench (≈ 650 metrics): that was most of its
    outcome lift (bench/results/latency_kw_session9.txt). The same fields, computed as
    ``metric_to_dict`` computes them (a test compares both on every demo campaign).
    """
    metrics = list(campaign.metrics)
    chosen = choose(campaign.goal_type, metrics)
    key_metric = None if chosen is None else metrics[chosen[0]]
    facts = []
    for metric in metrics:
        entry = metric_catalog.by_key(metric.catalog_key) if metric.catalog_key else None
        direction: metric_catalog.Direction = entry.direction if entry else "higher"
        outcome = metric_catalog.assess(direction, metric.baseline, metric.target, metric.actual)
        facts.append(
            MetricFact(
                name=metric.name,
                key=metric.catalog_key,
                direction=direction if entry else None,
                baseline=metric.baseline,
                target=metric.target,
                actual=metric.actual,
                attainment_pct=_round(outcome.attainment_pct),
                lift_pct=_round(outcome.lift_pct),
                hit=outcome.hit,
                is_key=metric is key_metric,
                base_scale=base_scale(metric.unit or "", metric.catalog_key),
            )
        )
    return tuple(facts)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)  # as kb.campaigns.serialize rounds


# Units and catalog keys are few: a metric's scale was a fifth of its fact's cost.
@lru_cache(maxsize=1024)
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
    # Metric by metric: the write path's serialisation (campaign_out, after the session closed)
    # relies on each metric's campaign having been loaded here.
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
