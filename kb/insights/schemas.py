"""The portfolio, lessons and playbook schemas: inputs (query strings, forms, JSON) and answers.

Errors come back as ``InvalidInputError`` with one message per field, in the same shape (and
from the same ``field_errors``) as the campaign schema's, so pages and the API show them alike.
"""

from __future__ import annotations

from datetime import MAXYEAR, MINYEAR, date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kb.campaigns.schemas import InputDate, Markdown
from kb.campaigns.serialize import Out, Timestamp
from kb.database import MAX_ID
from kb.insights.portfolio import MAX_MONTHS, default_period
from kb.validation import InvalidInputError, validate_as
from kb.vocab import GoalType, Severity, Status

Theme = Literal["reward", "audience", "channel", "timing", "budget", "ops", "risk", "other"]
LessonKind = Literal["lesson", "recommendation", "hypothesis"]
CampaignId = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # An empty box or "全部" in a filter form means "any".
        return None if value == "" else value


class PortfolioQuery(_Query):
    """The period and filters of the portfolio; no dates means last year and this year."""

    date_from: Annotated[InputDate | None, Field(description="期间开始；缺省为去年 1 月 1 日")] = (
        None
    )
    date_to: Annotated[
        InputDate | None, Field(description="期间结束；缺省为今年 12 月 31 日（最长 60 个月）")
    ] = None
    goal_type: GoalType | None = None
    business_line: Annotated[str | None, Field(max_length=100)] = None


class ThemeQuery(_Query):
    """One theme, or all of them."""

    theme: Theme | None = None


class LessonQuery(_Query):
    """A search over lessons: words, theme, kind and paging."""

    q: Annotated[str | None, Field(max_length=500, description="关键词；为空时列出全部")] = None
    theme: Theme | None = None
    kind: LessonKind | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=100_000)] = 0


class PlaybookIn(BaseModel):
    """A curated playbook entry: what to do, its theme, and the campaigns for and against it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Markdown = ""
    theme: Theme
    supporting_ids: Annotated[list[CampaignId], Field(max_length=100)] = []
    contradicting_ids: Annotated[list[CampaignId], Field(max_length=100)] = []

    @field_validator("supporting_ids", "contradicting_ids")
    @classmethod
    def _dedupe(cls, values: list[int]) -> list[int]:
        return list(dict.fromkeys(values))


class PlaybookUpdate(PlaybookIn):
    """A full replacement of a playbook, with the version the editor last saw."""

    version: Annotated[int | None, Field(ge=1)] = None


def validate_playbook(data: Any, *, update: bool = False) -> PlaybookIn:
    """Validate a playbook; a campaign cannot both support and contradict it."""
    playbook = validate_as(PlaybookUpdate if update else PlaybookIn, data)
    both = set(playbook.supporting_ids) & set(playbook.contradicting_ids)
    if both:
        listed = "、".join(f"#{i}" for i in sorted(both))
        raise InvalidInputError({"contradicting_ids": f"活动 {listed} 不能既支持又反驳"})
    return playbook


def resolve_period(query: PortfolioQuery, today: date) -> tuple[date, date]:
    """Return the period asked for, defaults filled in; refuse a reversed or too long one."""
    default_from, default_to = default_period(today)
    # The year before or after a given date, kept within what a date can hold (years 1-9999).
    date_from = query.date_from or (
        date(max(query.date_to.year - 1, MINYEAR), 1, 1) if query.date_to else default_from
    )
    date_to = query.date_to or (
        date(min(date_from.year + 1, MAXYEAR), 12, 31) if query.date_from else default_to
    )
    if date_to < date_from:
        raise InvalidInputError({"date_to": "结束日期不能早于开始日期"})
    months = (date_to.year - date_from.year) * 12 + date_to.month - date_from.month + 1
    if months > MAX_MONTHS:
        raise InvalidInputError({"date_to": f"时间范围最长 {MAX_MONTHS} 个月"})
    return date_from, date_to


# ---- answers of the API ------------------------------------------------------------------


class SignalOut(Out):
    """A warning signal: which rule fired, how bad, and why (with the campaign's numbers)."""

    code: str  # a registered rule code (kb.insights.signals.RULES)
    label: str
    severity: Severity
    explanation: str
    rule: str
    metrics: list[str]


class CampaignSignalsOut(Out):
    """The warning signals of one campaign and the thresholds they were judged by."""

    campaign_id: int
    signals: list[SignalOut]
    thresholds: dict[str, float]


class KeyMetricOut(Out):
    """A campaign's key metric (its first with a target) and how it turned out."""

    name: str
    attainment_pct: float | None
    hit: bool | None


class PortfolioCampaignOut(Out):
    """A campaign of the portfolio: when, for whom, what it cost, how it did, its signals."""

    id: int
    title: str
    goal_type: GoalType
    status: Status
    start_date: date
    end_date: date
    business_line: str | None
    audience: list[str]
    budget_cny: float | None
    reward_spend_cny: float | None
    key_metric: KeyMetricOut | None
    signals: list[SignalOut]


class CrowdingOut(Out):
    """Campaigns per audience segment (rows) and month (columns); crowded from ``crowded_at``."""

    segments: list[str]
    months: list[str]
    counts: list[list[int]]
    crowded_at: int


class GoalSummaryOut(Out):
    """One goal type (or the total, goal_type null): count, budget, reward spend and results.

    ``reward_spend_cny`` is null when no campaign reported its reward cost as a metric;
    ``hit_share_pct`` and ``median_attainment_pct`` are over ``judged`` completed campaigns.
    A sum or median past the range of a float is null (JSON has no Infinity).
    """

    goal_type: GoalType | None
    label: str
    campaigns: int
    budget_cny: float | None
    budget_known: int
    reward_spend_cny: float | None
    reward_spend_known: int
    judged: int
    hit: int
    hit_share_pct: float | None
    median_attainment_pct: float | None
    attainment_n: int


class PortfolioOut(Out):
    """The campaigns of a period: timeline, crowding, per-goal results, gaps and signals."""

    date_from: date
    date_to: date
    goal_type: GoalType | None
    business_line: str | None
    campaigns: list[PortfolioCampaignOut]
    crowding: CrowdingOut
    goals: list[GoalSummaryOut]
    total: GoalSummaryOut
    uncovered_segments: list[str]
    signal_counts: dict[str, int]
    excluded_cancelled: int


class LessonOutcomeOut(Out):
    """What the lesson's campaign achieved."""

    key_metric: KeyMetricOut | None
    hit: int
    judged: int


class LessonItemOut(Out):
    """A lesson, recommendation or tested hypothesis, with its campaign and outcome."""

    campaign_id: int
    campaign_title: str
    industry: str
    goal_type: GoalType
    status: Status
    start_date: date
    kind: LessonKind
    text: str
    text_html: str
    result: Literal["validated", "refuted"] | None
    evidence: str
    themes: list[Theme]
    matched_terms: list[str]
    score: float
    outcome: LessonOutcomeOut


class CitedCampaignOut(Out):
    """A campaign a playbook cites, with its key metric's outcome."""

    id: int
    title: str
    goal_type: GoalType
    status: Status
    start_date: date
    end_date: date
    key_metric: str | None
    attainment_pct: float | None
    hit: bool | None


class PlaybookOut(Out):
    """A curated playbook entry and the campaigns for and against it."""

    id: int
    version: int
    title: str
    body: str
    theme: Theme
    theme_label: str
    supporting_ids: list[int]
    contradicting_ids: list[int]
    supporting: list[CitedCampaignOut]
    contradicting: list[CitedCampaignOut]
    created_at: Timestamp
    updated_at: Timestamp


class PlaybookList(Out):
    """Playbooks, most recently updated first."""

    items: list[PlaybookOut]


class LessonSearchOut(Out):
    """Lessons found (one page), counts per theme, and the playbooks on the same subject."""

    q: str
    theme: Theme | None
    kind: LessonKind | None
    total: int
    partial: bool
    theme_counts: dict[str, int]
    items: list[LessonItemOut]
    playbooks: list[PlaybookOut]
