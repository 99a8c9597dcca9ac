"""Drafting a campaign: similar past cases, collisions with running campaigns, a forecast.

Similar cases are completed campaigns ranked by meaning (the embeddings of the draft's text)
and by structure (same goal, shared audience, products, channels and reward
types, industry, budget scale, recency). Every case says why it matched.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import load_only, selectinload

from kb import audit
from kb import vocab as labels
from kb.campaigns import metrics as metric_catalog
from kb.campaigns.schemas import DraftIn
from kb.campaigns.serialize import MetricOut, campaign_to_input, metric_to_dict
from kb.database import write_transaction
from kb.drafts.collisions import CampaignFacts, Collision, RewardFacts, find_collisions
from kb.drafts.forecast import Forecast, forecast_draft
from kb.drafts.priors import log_ratio
from kb.drafts.schemas import ComparisonOut, DraftAnalysisOut, SimilarCaseOut
from kb.drafts.summary import DraftSummary, PlaybookMatch, playbook_matches, summarize
from kb.extensions import db
from kb.insights.playbooks import matching_playbooks
from kb.models import Campaign, Reward, SimilarFeedback
from kb.searching.service import MeaningRanking, start_ranking_by_meaning
from kb.vocab import ACTIVE_STATUSES
from search.normalize import normalize

CANDIDATES = 60
DRAFT_TEXT_CHARS = 400
# Weights of the similarity parts, each in [0, 1]. Set by hand from what planners asked for
# (meaning first, then the same goal and audience); checked, not fitted, on
# bench/data/drafts_devset.json with bench/eval_drafts.py (nDCG@10 0.949). A keyword part
# (BM25 over the draft's headline) added nothing there and cost ≈ 200 ms at 10k campaigns.
WEIGHTS = {
    "meaning": 1.0,
    "goal": 0.5,
    "audience": 0.4,
    "products": 0.2,
    "channels": 0.15,
    "rewards": 0.15,
    "industry": 0.2,
    "budget": 0.05,
    "recency": 0.05,
}
RECENCY_HALF_LIFE_DAYS = 730
# Similar cases the forecast weighs (the page shows the first ``limit``).
FORECAST_ANALOGS = 50


@dataclass(frozen=True, slots=True)
class SimilarCase:
    """A completed campaign like the draft, why, and what it achieved and taught."""

    campaign: Campaign
    score: float
    reasons: list[str]
    parts: dict[str, float]
    metrics: list[dict[str, Any]]


@dataclass(slots=True)
class DraftAnalysis:
    """Everything the planner sees for a draft: the summary band first, then the details."""

    similar: list[SimilarCase]
    conflicts: list[Collision]
    forecast: Forecast
    comparison: list[dict[str, Any]]
    summary: DraftSummary
    playbooks: list[PlaybookMatch] = field(default_factory=list)
    # The business line collisions were checked within; None: across every line.
    business_line: str | None = None
    # The campaigns taken to be the draft itself (saved from it), never a collision.
    own_ids: list[int] = field(default_factory=list)
    hidden: int = 0
    took_ms: float = 0.0
    notes: list[str] = field(default_factory=list)


def analyze_draft(draft: DraftIn, *, exclude_id: int | None = None) -> DraftAnalysis:
    """Find similar cases, collisions, a forecast and the summary band for a draft.

    The draft is never compared with itself: ``exclude_id`` (a stored campaign's own view),
    ``draft.campaign_id``, a ``campaign:<id>`` draft key and any campaign whose external_id is
    the draft key (the draft page saves drafts so) are the draft, not another campaign.
    """
    started = time.perf_counter()
    text = draft_text(draft)
    # The models encode the draft on the search pool (the longest step: ≈ half the analysis at
    # 10k campaigns) while this thread reads the database for the collisions and playbooks.
    meaning = start_ranking_by_meaning(text, limit=CANDIDATES) if text else None
    hidden_ids = _hidden(draft.draft_key)
    own = own_campaign_ids(draft, exclude_id)
    notes = []
    start, end = draft.start_date, draft.end_date
    if start is None or end is None:
        notes.append("未填写活动日期，无法检查与进行中或计划中活动的冲突。")
        conflicts: list[Collision] = []
    else:
        others = [c for c in _overlapping(start, end) if c.id not in own]
        conflicts = find_collisions(_draft_facts(draft, exclude_id, start, end), others)
    playbooks = playbook_matches(matching_playbooks(text, draft.goal_type))
    # The forecast reads more analogs than the page lists: a metric needs several that measured it.
    ranked = _ranked(
        draft, meaning, limit=max(draft.limit, FORECAST_ANALOGS), exclude=set(hidden_ids) | own
    )
    # Only the cases the page lists are explained (reasons, metrics, quoted hypotheses).
    similar = _cases(draft, ranked[: draft.limit])
    outlook = forecast_draft(
        draft, [(campaign, score) for score, campaign, _ in ranked], exclude=set(hidden_ids) | own
    )
    return DraftAnalysis(
        similar=similar,
        conflicts=conflicts,
        forecast=outlook,
        comparison=_comparison(draft, similar),
        summary=summarize(draft, similar, conflicts, outlook.metrics, playbooks, text=text),
        playbooks=playbooks,
        business_line=draft.business_line,
        own_ids=sorted(own),
        hidden=len(hidden_ids),
        took_ms=round((time.perf_counter() - started) * 1000, 1),
        notes=notes,
    )


def draft_from_campaign(campaign: Campaign, *, limit: int = 10) -> DraftIn:
    """Return a stored campaign as a draft, for its own similar-cases view."""
    stored = campaign_to_input(campaign)
    draft = {key: value for key, value in stored.items() if key in DraftIn.model_fields}
    draft["metrics"] = [
        {"name": m["name"], "unit": m["unit"], "baseline": m["baseline"], "target": m["target"]}
        for m in stored["metrics"]
    ]
    draft["documents"] = []  # long plans would crowd out the head that says what it is about
    return DraftIn.model_validate(
        {
            **draft,
            "limit": limit,
            "draft_key": f"campaign:{campaign.id}",
            "campaign_id": campaign.id,
        }
    )


def own_campaign_ids(draft: DraftIn, exclude_id: int | None = None) -> set[int]:
    """Return the ids of the stored campaigns that are this draft (saved from it)."""
    own = {i for i in (exclude_id, draft.campaign_id) if i is not None}
    key = draft.draft_key or ""
    if key.startswith("campaign:") and key.removeprefix("campaign:").isdigit():
        own.add(int(key.removeprefix("campaign:")))
    if key:
        own.update(
            db.session.scalars(
                sa.select(Campaign.id).where(
                    Campaign.external_id == key, Campaign.deleted_at.is_(None)
                )
            )
        )
    return own


def analysis_out(analysis: DraftAnalysis) -> DraftAnalysisOut:
    """Return the API shape of a draft analysis."""
    return DraftAnalysisOut(
        similar=[
            SimilarCaseOut(
                id=case.campaign.id,
                title=case.campaign.title,
                score=case.score,
                reasons=case.reasons,
                parts=case.parts,
                industry=case.campaign.industry,
                goal_type=case.campaign.goal_type,
                start_date=case.campaign.start_date,
                end_date=case.campaign.end_date,
                outcome={m["name"]: MetricOut.model_validate(m) for m in case.metrics},
                went_well=case.campaign.went_well,
                problems=case.campaign.problems,
                lessons=case.campaign.lessons,
                recommendations=case.campaign.recommendations,
            )
            for case in analysis.similar
        ],
        conflicts=analysis.conflicts,
        forecast=analysis.forecast,
        comparison=[ComparisonOut.model_validate(row) for row in analysis.comparison],
        summary=analysis.summary,
        playbooks=analysis.playbooks,
        business_line=analysis.business_line,
        own_ids=analysis.own_ids,
        hidden=analysis.hidden,
        notes=analysis.notes,
        took_ms=analysis.took_ms,
    )


def mark_not_useful(draft_key: str, campaign_id: int, *, useful: bool = False) -> None:
    """Remember (or forget) that a past campaign is not useful for this draft."""
    with write_transaction() as session:
        existing = session.scalar(
            sa.select(SimilarFeedback).where(
                SimilarFeedback.draft_key == draft_key, SimilarFeedback.campaign_id == campaign_id
            )
        )
        if useful and existing is not None:
            session.delete(existing)
        elif not useful and existing is None:
            session.add(SimilarFeedback(draft_key=draft_key, campaign_id=campaign_id))
        verdict = "有用" if useful else "不相关"
        audit.record("feedback", f"campaign:{campaign_id}", f"草案 {draft_key}：{verdict}")


def forget_feedback(draft_key: str) -> None:
    """Show every similar case again for this draft."""
    with write_transaction() as session:
        session.execute(sa.delete(SimilarFeedback).where(SimilarFeedback.draft_key == draft_key))


def similar_cases(draft: DraftIn, *, limit: int, exclude: set[int]) -> list[SimilarCase]:
    """Rank completed campaigns by meaning and structure; return the best ``limit``."""
    text = draft_text(draft)
    meaning = start_ranking_by_meaning(text, limit=CANDIDATES) if text else None
    return _cases(draft, _ranked(draft, meaning, limit=limit, exclude=exclude))


# A ranked case before it is explained: its score (rounded), the campaign, its parts.
_Ranked = tuple[float, Campaign, dict[str, float]]


def _ranked(
    draft: DraftIn, ranking: MeaningRanking | None, *, limit: int, exclude: set[int]
) -> list[_Ranked]:
    """Return the best ``limit`` completed campaigns for the draft, best first, unexplained.

    ``ranking``: the draft's text ranked by meaning (started by the caller; None for no text).
    No status filter there: building the allow-list of every completed campaign cost more than
    scoring all of them. Planned and running ones are few and dropped by _load.
    """
    meaning: dict[int, float] = {}
    if ranking is not None:
        meaning = _unit_scale(dict(ranking.result()))
    # Candidates come from meaning alone: adding every completed campaign with the same goal and
    # audience (from the index) changed nothing on the labelled drafts and cost ≈ 70 ms at 10k.
    candidates = set(meaning) - exclude
    campaigns = _load(candidates)
    scored = []
    for campaign in campaigns:
        parts = _structure(draft, campaign)
        parts["meaning"] = meaning.get(campaign.id, 0.0)
        score = sum(WEIGHTS[name] * value for name, value in parts.items())
        scored.append((score, campaign.id, campaign, parts))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [(round(score, 4), campaign, parts) for score, _, campaign, parts in scored[:limit]]


def _cases(draft: DraftIn, ranked: list[_Ranked]) -> list[SimilarCase]:
    """Explain ranked cases: why each matched and what it achieved.

    The forecast reads FORECAST_ANALOGS cases and the page lists ``draft.limit`` (10 by
    default): explaining only those saves the reasons, the metrics' assessments (the key
    metric chosen again for every metric) and the hypotheses of ≈ 40 campaigns per request.
    """
    _load_hypotheses([campaign for _, campaign, _ in ranked])
    return [
        SimilarCase(
            campaign=campaign,
            score=score,
            reasons=_reasons(draft, campaign, parts),
            parts={k: round(v, 3) for k, v in parts.items()},
            metrics=[metric_to_dict(m) for m in campaign.metrics],
        )
        for score, campaign, parts in ranked
    ]


def draft_text(draft: DraftIn) -> str:
    """Return the draft as one text for the meaning and keyword indexes."""
    rewards = " ".join(f"{r.type} {r.detail}" for r in draft.rewards)
    parts = [
        draft.title,
        draft.goal,
        " ".join(draft.audience),
        " ".join(draft.products),
        " ".join(draft.channels),
        rewards,
        draft.summary,
        draft.text,
        *(f"{d.title}\n{d.body}" for d in draft.documents),
    ]
    # The head of a draft says what it is about; encoding time grows with length (e5 reads at
    # most 512 tokens anyway), so a long plan is cut rather than paid for on every request.
    return "\n".join(p for p in parts if p)[:DRAFT_TEXT_CHARS]


def _structure(draft: DraftIn, campaign: Campaign) -> dict[str, float]:
    parts = {
        "goal": float(draft.goal_type is not None and draft.goal_type == campaign.goal_type),
        "audience": _overlap(draft.audience, campaign.audience),
        "products": _overlap(draft.products, campaign.products),
        "channels": _overlap(draft.channels, campaign.channels),
        "rewards": _overlap([r.type for r in draft.rewards], [r.type for r in campaign.rewards]),
        "industry": float(
            bool(draft.industry) and _norm(draft.industry or "") == _norm(campaign.industry)
        ),
        "budget": 0.0,
        "recency": 0.0,
    }
    if draft.budget_cny and campaign.budget_cny:
        # Same order of magnitude counts; ten times apart counts nothing (nor do budgets so far
        # apart that their ratio is no number).
        budgets = log_ratio(draft.budget_cny, campaign.budget_cny)
        if budgets is not None:
            parts["budget"] = max(0.0, 1.0 - abs(budgets) / math.log(10))
    reference = draft.start_date or date.today()
    age_days = max(0, (reference - campaign.end_date).days)
    parts["recency"] = 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)
    return parts


def _reasons(draft: DraftIn, campaign: Campaign, parts: dict[str, float]) -> list[str]:
    reasons = []
    if parts["goal"]:
        reasons.append(f"同一目标：{labels.GOAL_TYPES.get(campaign.goal_type, campaign.goal_type)}")
    for label, mine, theirs in (
        ("共同人群", draft.audience, campaign.audience),
        ("共同商品", draft.products, campaign.products),
        ("共同渠道", draft.channels, campaign.channels),
    ):
        shared = _shared(mine, theirs)
        if shared:
            reasons.append(f"{label}：{'、'.join(shared[:4])}")
    reward_types = {_norm(r.type) for r in draft.rewards}
    same_rewards = [
        f"{r.type}{'（可叠加）' if r.stackable else ''}"
        for r in campaign.rewards
        if _norm(r.type) in reward_types
    ]
    if same_rewards:
        reasons.append(f"同类奖励：{'、'.join(dict.fromkeys(same_rewards))}")
    if parts["industry"]:
        reasons.append(f"同行业：{campaign.industry}")
    if parts["meaning"] >= 0.5:
        reasons.append("方案内容相近")
    return reasons


def _comparison(draft: DraftIn, similar: list[SimilarCase]) -> list[dict[str, Any]]:
    """Set the draft's targets beside what the analogs achieved on the same catalog metric."""
    rows = []
    for metric in draft.metrics:
        key = _key(metric.name)
        if key is None:
            continue
        cases = [
            {
                "id": case.campaign.id,
                "title": case.campaign.title,
                "name": m["name"],
                "unit": m["unit"],
                "target": m["target"],
                "actual": m["actual"],
                "attainment_pct": m["attainment_pct"],
                "hit": m["hit"],
            }
            for case in similar
            for m in case.metrics
            if m["catalog_key"] == key and m["actual"] is not None
        ]
        rows.append({"name": metric.name, "key": key, "unit": metric.unit, "target": metric.target,
                     "cases": cases})  # fmt: skip
    return rows


def _overlapping(start: date, end: date) -> list[CampaignFacts]:
    """Return the planned and running campaigns whose dates touch [start, end].

    Two queries of the columns the collision check reads: loading them as Campaign objects with
    their rewards (every text column, one object per row) cost 1.7× the CPU at 10k campaigns
    (≈ 230 overlapping campaigns a draft: 24.0 -> 14.4 ms p50, same facts).
    """
    campaigns = db.session.execute(
        sa.select(
            Campaign.id,
            Campaign.title,
            Campaign.business_line,
            Campaign.status,
            Campaign.start_date,
            Campaign.end_date,
            Campaign.audience,
            Campaign.products,
        ).where(
            Campaign.deleted_at.is_(None),
            Campaign.status.in_(ACTIVE_STATUSES),
            Campaign.start_date <= end,
            Campaign.end_date >= start,
        )
    ).all()
    rewards: dict[int, list[RewardFacts]] = {c.id: [] for c in campaigns}
    if rewards:
        for campaign_id, kind, detail, stackable in db.session.execute(
            sa.select(Reward.campaign_id, Reward.type, Reward.detail, Reward.stackable)
            .where(Reward.campaign_id.in_(rewards))
            .order_by(Reward.campaign_id, Reward.position)
        ):
            rewards[campaign_id].append(RewardFacts(kind, detail, stackable))
    return [
        CampaignFacts(
            id=c.id,
            title=c.title,
            business_line=c.business_line,
            status=c.status,
            start_date=c.start_date,
            end_date=c.end_date,
            audience=tuple(c.audience),
            products=tuple(c.products),
            rewards=tuple(rewards[c.id]),
        )
        for c in campaigns
    ]


def _draft_facts(draft: DraftIn, own_id: int | None, start: date, end: date) -> CampaignFacts:
    return CampaignFacts(
        id=own_id,
        title=draft.title,
        business_line=draft.business_line,
        status="planned",
        start_date=start,
        end_date=end,
        audience=tuple(draft.audience),
        products=tuple(draft.products),
        rewards=tuple(RewardFacts(r.type, r.detail, r.stackable) for r in draft.rewards),
    )


def _hidden(draft_key: str | None) -> list[int]:
    if not draft_key:
        return []
    return list(
        db.session.scalars(
            sa.select(SimilarFeedback.campaign_id).where(SimilarFeedback.draft_key == draft_key)
        )
    )


def _load(ids: set[int]) -> list[Campaign]:
    if not ids:
        return []
    return list(
        db.session.scalars(
            sa.select(Campaign)
            .where(
                Campaign.id.in_(ids),
                Campaign.deleted_at.is_(None),
                Campaign.status == "completed",
            )
            .options(selectinload(Campaign.rewards), selectinload(Campaign.metrics))
        )
    )


def _load_hypotheses(campaigns: list[Campaign]) -> None:
    """Load the campaigns' hypotheses in one query (the summary quotes their lessons)."""
    if campaigns:
        db.session.scalars(
            sa.select(Campaign)
            .where(Campaign.id.in_([c.id for c in campaigns]))
            .options(load_only(Campaign.id), selectinload(Campaign.hypotheses))
        ).all()


def _unit_scale(scores: dict[int, float]) -> dict[int, float]:
    """Scale scores into [0, 1] (min-max), so parts of different origin can be weighed."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    spread = (high - low) or 1.0
    return {cid: (score - low) / spread for cid, score in scores.items()}


# Audience, product, channel and reward names repeat across drafts and candidates: a draft's
# similar cases compared ≈ 3,400 of them (≈ 120 candidates × their names, each against the
# draft's) through normalize (Traditional -> Simplified, width folding), ≈ 35 µs each.
@functools.lru_cache(maxsize=4096)
def _norm(text: str) -> str:
    return normalize(text.strip())[0].replace(" ", "")


def _overlap(mine: list[str], theirs: list[str]) -> float:
    """Return |shared| / |mine|: how much of what the draft names the case also had."""
    if not mine:
        return 0.0
    theirs_norm = {_norm(t) for t in theirs}
    return sum(_norm(m) in theirs_norm for m in set(mine)) / len(set(mine))


def _shared(mine: list[str], theirs: list[str]) -> list[str]:
    theirs_norm = {_norm(t) for t in theirs}
    return [m for m in dict.fromkeys(mine) if _norm(m) in theirs_norm]


def _key(name: str) -> str | None:
    entry = metric_catalog.lookup(name)
    return entry.key if entry else None
