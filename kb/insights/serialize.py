"""Turn portfolios, found lessons, playbooks and signals into the API's answers (``*Out``)."""

from __future__ import annotations

from kb.insights import playbooks
from kb.insights.lessons import THEME_LABELS, LessonHit, LessonResults
from kb.insights.portfolio import KeyMetric, Portfolio
from kb.insights.schemas import (
    CampaignSignalsOut,
    CitedCampaignOut,
    CrowdingOut,
    GoalSummaryOut,
    KeyMetricOut,
    LessonItemOut,
    LessonOutcomeOut,
    LessonSearchOut,
    PlaybookOut,
    PortfolioCampaignOut,
    PortfolioOut,
    SignalOut,
)
from kb.insights.signals import Signal, SignalThresholds
from kb.models import Playbook


def signal_out(signal: Signal) -> SignalOut:
    """Return a fired signal in the API shape, with its rule's label."""
    return SignalOut(
        code=signal.code,
        label=signal.label,
        severity=signal.severity,
        explanation=signal.explanation,
        rule=signal.rule,
        metrics=list(signal.metrics),
    )


def campaign_signals_out(
    campaign_id: int, found: list[Signal], thresholds: SignalThresholds
) -> CampaignSignalsOut:
    """Return a campaign's signals and the thresholds they were judged by."""
    return CampaignSignalsOut(
        campaign_id=campaign_id,
        signals=[signal_out(s) for s in found],
        thresholds=thresholds.by_setting(),
    )


def key_metric_out(key: KeyMetric | None) -> KeyMetricOut | None:
    """Return a key metric with its attainment rounded to 0.1 %."""
    if key is None:
        return None
    return KeyMetricOut(name=key.name, attainment_pct=_round(key.attainment_pct), hit=key.hit)


def portfolio_out(portfolio: Portfolio) -> PortfolioOut:
    """Return the API shape (also the chart data block of the page)."""
    return PortfolioOut(
        date_from=portfolio.date_from,
        date_to=portfolio.date_to,
        goal_type=portfolio.goal_type,
        business_line=portfolio.business_line,
        campaigns=[
            PortfolioCampaignOut(
                id=r.id,
                title=r.title,
                goal_type=r.goal_type,
                status=r.status,
                start_date=r.start_date,
                end_date=r.end_date,
                business_line=r.business_line,
                audience=r.audience,
                budget_cny=r.budget_cny,
                reward_spend_cny=r.reward_spend_cny,
                key_metric=key_metric_out(r.key_metric),
                signals=[signal_out(s) for s in r.signals],
            )
            for r in portfolio.campaigns
        ],
        crowding=CrowdingOut.model_validate(portfolio.crowding, from_attributes=True),
        goals=[GoalSummaryOut.model_validate(g, from_attributes=True) for g in portfolio.goals],
        total=GoalSummaryOut.model_validate(portfolio.total, from_attributes=True),
        uncovered_segments=portfolio.uncovered_segments,
        signal_counts=portfolio.signal_counts,
        excluded_cancelled=portfolio.excluded_cancelled,
    )


def hit_out(hit: LessonHit) -> LessonItemOut:
    """Return the API shape of a found lesson."""
    item = hit.item
    return LessonItemOut(
        campaign_id=item.campaign_id,
        campaign_title=item.campaign_title,
        industry=item.industry,
        goal_type=item.goal_type,
        status=item.status,
        start_date=item.start_date,
        kind=item.kind,
        text=item.text,
        text_html=str(hit.text_html),
        result=item.result,
        evidence=item.evidence,
        themes=list(item.themes),
        matched_terms=list(hit.matched),
        score=hit.score,
        outcome=LessonOutcomeOut(
            key_metric=key_metric_out(item.outcome.key_metric),
            hit=item.outcome.hit,
            judged=item.outcome.judged,
        ),
    )


def lesson_search_out(
    q: str,
    theme: str | None,
    kind: str | None,
    results: LessonResults,
    found_playbooks: list[Playbook],
) -> LessonSearchOut:
    """Return a page of found lessons with the playbooks on the same subject."""
    return LessonSearchOut(
        q=q,
        theme=theme,
        kind=kind,
        total=results.total,
        partial=results.partial,
        theme_counts=results.theme_counts,
        items=[hit_out(hit) for hit in results.hits],
        playbooks=[playbook_out(p) for p in found_playbooks],
    )


def playbook_out(playbook: Playbook) -> PlaybookOut:
    """Return the API shape of a playbook, its cited campaigns with their outcomes."""
    cited = playbooks.cited_campaigns(playbook)
    stances = [(c.campaign_id, c.stance) for c in playbook.citations]
    return PlaybookOut(
        id=playbook.id,
        version=playbook.version,
        title=playbook.title,
        body=playbook.body,
        theme=playbook.theme,
        theme_label=THEME_LABELS.get(playbook.theme, playbook.theme),
        supporting_ids=[i for i, stance in stances if stance == playbooks.SUPPORTS],
        contradicting_ids=[i for i, stance in stances if stance == playbooks.CONTRADICTS],
        supporting=[_cited_out(c) for c in cited if c.stance == playbooks.SUPPORTS],
        contradicting=[_cited_out(c) for c in cited if c.stance == playbooks.CONTRADICTS],
        created_at=playbook.created_at,
        updated_at=playbook.updated_at,
    )


def _cited_out(cited: playbooks.CitedCampaign) -> CitedCampaignOut:
    campaign = cited.campaign
    return CitedCampaignOut(
        id=campaign.id,
        title=campaign.title,
        goal_type=campaign.goal_type,
        status=campaign.status,
        start_date=campaign.start_date,
        end_date=campaign.end_date,
        key_metric=cited.key_metric_name,
        attainment_pct=cited.attainment_pct,
        hit=cited.hit,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
