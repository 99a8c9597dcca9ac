"""Validation of the portfolio, lessons and playbook inputs (query strings, forms and JSON).

Errors come back as ``InvalidInputError`` with one message per field, in the same shape (and
from the same ``field_errors``) as the campaign schema's, so pages and the API show them alike.
"""

from __future__ import annotations

from datetime import MAXYEAR, MINYEAR, date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kb.campaigns.schemas import Markdown
from kb.database import MAX_ID
from kb.insights.portfolio import MAX_MONTHS, default_period
from kb.validation import InvalidInputError, validate_as
from kb.vocab import GoalType

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

    date_from: date | None = None
    date_to: date | None = None
    goal_type: GoalType | None = None
    business_line: Annotated[str | None, Field(max_length=100)] = None


class LessonQuery(_Query):
    """A search over lessons: words, theme, kind and paging."""

    q: Annotated[str | None, Field(max_length=500)] = None
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
