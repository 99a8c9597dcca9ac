"""The summary band of a draft analysis: what a planner must decide on, before the details.

Collisions and the worst stacked discount; how many similar cases there are and how often they
hit their key metric; the lessons and playbooks most relevant to this draft, quoted; one forecast
headline per target metric. The page shows it first and ``POST /api/v1/similar`` returns it.

The lessons are ranked for the draft, not by their case's rank: a case further down the list
whose lesson speaks to the draft's own risk (stacked rewards when the draft stacks them) is
worth more than the nearest case's generic advice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kb.insights.lessons import THEME_LABELS, LessonItem, campaign_items, lesson_terms
from kb.insights.portfolio import key_metric
from kb.models import Playbook
from kb.web.rendering import render_markdown
from search.normalize import normalize

if TYPE_CHECKING:
    from kb.campaigns.schemas import DraftIn
    from kb.drafts.analysis import SimilarCase
    from kb.drafts.collisions import Collision

TOP_LESSONS = 3
EXCERPT_CHARS = 120
HEADLINE_CHARS = 70
# How much each part of a lesson's relevance counts, over the case's own similarity (0..1).
# Set by hand: a lesson on the draft's own risk outweighs any gap in similarity; a lesson
# (经验) beats a recommendation; shared words and a case that missed its key metric (failures
# teach) break ties.
RISK_WEIGHT = 1.5
TERMS_WEIGHT = 0.5
MISSED_WEIGHT = 0.15
# Tested hypotheses are left out: quoted on one line without their evidence, "四类优惠同时叠加能
# 把 GMV 拉高 30%" (validated, at a loss) reads as advice.
KIND_WEIGHT = {"lesson": 0.3, "recommendation": 0.0}
_STACKING = re.compile(r"叠加|叠券|叠满|多券|羊毛|薅|stack")


@dataclass(frozen=True, slots=True)
class QuotedLesson:
    """A lesson (or recommendation) quoted from a similar case, and why it is quoted."""

    campaign_id: int
    campaign_title: str
    kind: str
    text: str
    relevance: float
    why: list[str]


@dataclass(frozen=True, slots=True)
class PlaybookMatch:
    """A playbook that applies to the draft, as the page shows it."""

    id: int
    title: str
    theme: str
    theme_label: str
    excerpt: str
    supporting: int
    contradicting: int


@dataclass(frozen=True, slots=True)
class ForecastHeadline:
    """One line per target metric: what history says about it."""

    name: str
    headline: str
    enough: bool


@dataclass(frozen=True, slots=True)
class DraftSummary:
    """The band at the top of a draft analysis."""

    collisions: int
    stacking: int
    worst_discount_pct: float | None
    worst_amount_cny: float | None
    worst_with_id: int | None
    worst_with_title: str | None
    all_business_lines: bool
    similar: int
    key_metric_judged: int
    key_metric_hit: int
    key_metric_hit_rate: float | None
    lessons: list[QuotedLesson]
    playbooks: list[PlaybookMatch]
    forecasts: list[ForecastHeadline]


def summarize(
    draft: DraftIn,
    similar: Sequence[SimilarCase],
    conflicts: Sequence[Collision],
    forecasts: Sequence[Any],
    playbooks: Sequence[PlaybookMatch],
    *,
    text: str,
) -> DraftSummary:
    """Build the summary band from an analysis' parts (``text`` is the draft as one text)."""
    worst = _worst(conflicts)
    judged = hit = 0
    for case in similar:
        key = key_metric(list(case.campaign.metrics))  # as the portfolio judges it
        if key is not None and key.hit is not None:
            judged += 1
            hit += int(key.hit)
    stacking = sum(c.stacking_risk for c in conflicts)
    return DraftSummary(
        collisions=len(conflicts),
        stacking=stacking,
        worst_discount_pct=None if worst is None else worst.worst_case_discount_pct,
        worst_amount_cny=None if worst is None else worst.worst_case_amount_cny,
        worst_with_id=None if worst is None else worst.id,
        worst_with_title=None if worst is None else worst.title,
        all_business_lines=draft.business_line is None,
        similar=len(similar),
        key_metric_judged=judged,
        key_metric_hit=hit,
        key_metric_hit_rate=hit / judged if judged else None,
        lessons=top_lessons(draft, similar, stacking_collision=stacking > 0, text=text),
        playbooks=list(playbooks[:2]),
        forecasts=[forecast_headline(m) for m in forecasts],
    )


def top_lessons(
    draft: DraftIn,
    similar: Sequence[SimilarCase],
    *,
    stacking_collision: bool,
    text: str,
    limit: int = TOP_LESSONS,
) -> list[QuotedLesson]:
    """Return the lessons of the similar cases most relevant to the draft, one per case."""
    if not similar:
        return []
    draft_terms = lesson_terms(text) if text.strip() else frozenset()
    draft_stacks = any(r.stackable for r in draft.rewards)
    top_score = max(case.score for case in similar) or 1.0
    best: dict[int, QuotedLesson] = {}
    for case in similar:
        key = key_metric(list(case.campaign.metrics))  # as the portfolio judges it
        missed = key is not None and key.hit is False
        for item in campaign_items(case.campaign):
            if item.kind not in KIND_WEIGHT:
                continue
            quoted = _quote(item, case.score / top_score, missed, draft_terms,
                            draft_stacks, stacking_collision)  # fmt: skip
            held = best.get(item.campaign_id)
            if held is None or quoted.relevance > held.relevance:
                best[item.campaign_id] = quoted
    ranked = sorted(best.values(), key=lambda q: (-q.relevance, q.campaign_id))
    return ranked[:limit]


def _quote(
    item: LessonItem,
    similarity: float,
    missed: bool,
    draft_terms: frozenset[str],
    draft_stacks: bool,
    stacking_collision: bool,
) -> QuotedLesson:
    why = []
    relevance = similarity + KIND_WEIGHT.get(item.kind, 0.0)
    if draft_stacks and _STACKING.search(normalize(item.search_text)[0]):
        relevance += RISK_WEIGHT if stacking_collision else RISK_WEIGHT / 2
        why.append("与草案的可叠加优惠相关")
    terms = lesson_terms(item.search_text)
    if terms and draft_terms:
        shared = len(terms & draft_terms) / math.sqrt(len(terms))
        relevance += TERMS_WEIGHT * min(1.0, shared)
    if missed:
        relevance += MISSED_WEIGHT
        why.append("该活动主要指标未达成")
    return QuotedLesson(
        campaign_id=item.campaign_id,
        campaign_title=item.campaign_title,
        kind=item.kind,
        text=item.text,
        relevance=round(relevance, 3),
        why=why,
    )


def playbook_matches(found: Sequence[Playbook]) -> list[PlaybookMatch]:
    """Return the matching playbooks as the page and the API show them."""
    return [
        PlaybookMatch(
            id=p.id,
            title=p.title,
            theme=p.theme,
            theme_label=THEME_LABELS.get(p.theme, p.theme),
            excerpt=excerpt(p.body),
            supporting=sum(c.stance == "supports" for c in p.citations),
            contradicting=sum(c.stance == "contradicts" for c in p.citations),
        )
        for p in found
    ]


def excerpt(markdown: str, limit: int = EXCERPT_CHARS) -> str:
    """Return the plain text of Markdown cut to ``limit`` characters (as Jinja's truncate)."""
    plain = " ".join(render_markdown(markdown).striptags().split())
    return plain if len(plain) <= limit + 5 else plain[: limit - 1] + "…"


def forecast_headline(metric: Any) -> ForecastHeadline:
    """Return one metric's forecast in a line: the first clauses of its summary."""
    # Read defensively: the forecast's dataclass is being reworked; name and summary stay.
    name = str(getattr(metric, "name", ""))
    explicit = getattr(metric, "headline", None)
    summary = str(getattr(metric, "summary", "") or "")
    headline = explicit if isinstance(explicit, str) and explicit else _headline(summary, name)
    return ForecastHeadline(
        name=name, headline=headline, enough=bool(getattr(metric, "enough", True))
    )


def _headline(summary: str, name: str) -> str:
    """Cut a summary to its first clauses: no name prefix, no parentheses (cases, caveats)."""
    text = summary.strip().removeprefix(f"{name}：").removeprefix(f"{name}:").strip()
    clauses: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char in "（(":
            depth += 1
        elif char in "）)":
            depth = max(0, depth - 1)
        elif depth == 0 and char in "；;":
            clauses.append("".join(current).strip())
            current = []
        elif depth == 0:
            current.append(char)
    clauses.append("".join(current).strip())
    clauses = [c.rstrip("。.") for c in clauses if c.strip("。. ")]
    if not clauses:
        return text
    line = clauses[0]
    for clause in clauses[1:]:
        if len(line) + 1 + len(clause) > HEADLINE_CHARS:
            break
        line = f"{line}；{clause}"
    return line


def _worst(conflicts: Sequence[Collision]) -> Collision | None:
    """Return the stacking collision with the deepest combined discount (or largest amount)."""
    stacking = [c for c in conflicts if c.stacking_risk]
    if not stacking:
        return None
    return max(
        stacking,
        key=lambda c: (
            c.worst_case_discount_pct if c.worst_case_discount_pct is not None else -1.0,
            c.worst_case_amount_cny or 0.0,
        ),
    )
