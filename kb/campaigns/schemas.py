"""The one validation schema of a campaign, shared by the web form, the JSON API and importers."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from kb.parsing import date_input, number_input, parse_in_unit
from kb.validation import MAX_ID, reject_unstorable, validate_as
from kb.vocab import DocumentKind, GoalType, HypothesisResult, Status

MARKDOWN_MAX = 100_000
DRAFT_ACTUAL_MESSAGE = "草案还没有实际值：只填基线和目标，实际值在活动结束后录入"
# One record's text in all: each field may hold MARKDOWN_MAX, but a record of many full fields
# and documents (5.5 M characters) made every save, history version and index pass costly.
RECORD_MAX_CHARS = 1_000_000


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("not_finite")
    return value


# Numbers and dates are read as people type them (kb/parsing.py): 50万, 3.5%, 2025年12月1日.
Number = Annotated[float | None, BeforeValidator(number_input), AfterValidator(_finite)]
# The bound sits inside the Optional: pydantic cannot compare None with it.
NonNegative = Annotated[
    Annotated[float, Field(ge=0)] | None, BeforeValidator(number_input), AfterValidator(_finite)
]
InputDate = Annotated[date, BeforeValidator(date_input)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
ListItem = Annotated[str, Field(min_length=1, max_length=100)]
Markdown = Annotated[str, Field(max_length=MARKDOWN_MAX)]


class _Strict(BaseModel):
    # An allow-list: a field the schema does not name is an error, never silently stored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # The same answer on both databases: a field error, not a PostgreSQL DataError (500).
    _storable = field_validator("*", mode="before")(reject_unstorable)


class RewardIn(_Strict):
    """An incentive: its type, details, and whether it stacks with other rewards."""

    type: Annotated[str, Field(min_length=1, max_length=50)]
    detail: Annotated[str, Field(max_length=1000)] = ""
    stackable: bool = False


class MetricIn(_Strict):
    """An outcome metric with baseline, target and actual values (any may be unknown)."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    unit: Annotated[str, Field(max_length=20)] = ""
    baseline: Number = None
    target: Number = None
    actual: Number = None
    # The campaign's key metric (主要指标), chosen by the author; at most one per campaign.
    key: bool = False

    @model_validator(mode="before")
    @classmethod
    def _values_in_unit(cls, data: Any) -> Any:
        return values_in_unit(data)


def values_in_unit(data: Any) -> Any:
    """Read typed metric values in the metric's unit: "1.2亿" in 万元 is 12000."""
    if not isinstance(data, dict):
        return data
    given = data.get("unit")
    unit = given if isinstance(given, str) else ""
    return {
        key: parse_in_unit(value, unit)
        if key in ("baseline", "target", "actual") and isinstance(value, str)
        else value
        for key, value in data.items()
    }


class HypothesisIn(_Strict):
    """A hypothesis the campaign tested and its result."""

    statement: Annotated[str, Field(min_length=1, max_length=2000)]
    result: HypothesisResult = "inconclusive"
    evidence: Annotated[str, Field(max_length=5000)] = ""


class DocumentIn(_Strict):
    """A Markdown document attached to the campaign."""

    title: ShortText
    kind: DocumentKind = "other"
    body: Markdown = ""


class CampaignIn(_Strict):
    """Everything a client may write about a campaign."""

    title: ShortText
    industry: Annotated[str, Field(min_length=1, max_length=50)]
    department: Annotated[str, Field(min_length=1, max_length=100)]
    business_line: Annotated[str | None, Field(max_length=100)] = None
    goal_type: GoalType
    goal: Annotated[str, Field(max_length=5000)] = ""
    audience: Annotated[list[ListItem], Field(max_length=50)] = []
    products: Annotated[list[ListItem], Field(max_length=100)] = []
    rewards: Annotated[list[RewardIn], Field(max_length=50)] = []
    channels: Annotated[list[ListItem], Field(max_length=50)] = []
    start_date: InputDate
    end_date: InputDate
    status: Status = "completed"
    budget_cny: NonNegative = None
    metrics: Annotated[list[MetricIn], Field(max_length=100)] = []
    summary: Markdown = ""
    went_well: Markdown = ""
    problems: Markdown = ""
    lessons: Markdown = ""
    recommendations: Markdown = ""
    hypotheses: Annotated[list[HypothesisIn], Field(max_length=50)] = []
    documents: Annotated[list[DocumentIn], Field(max_length=50)] = []
    tags: Annotated[list[ListItem], Field(max_length=50)] = []
    external_id: Annotated[str | None, Field(max_length=200)] = None

    @field_validator("business_line", "external_id")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("audience", "products", "channels", "tags")
    @classmethod
    def _dedupe(cls, values: list[str]) -> list[str]:
        # Keep the user's order; a segment listed twice is one segment.
        return list(dict.fromkeys(values))

    @field_validator("documents")
    @classmethod
    def _record_size(cls, documents: list[DocumentIn], info: ValidationInfo) -> list[DocumentIn]:
        return check_record_size(documents, info)

    @field_validator("metrics")
    @classmethod
    def _one_key_metric(cls, metrics: list[MetricIn]) -> list[MetricIn]:
        chosen = [m.name for m in metrics if m.key]
        if len(chosen) > 1:
            raise PydanticCustomError(
                "key_metric_twice",
                "主要指标只能选一个，现在选了 {count} 个：{names}",
                {"count": len(chosen), "names": "、".join(chosen)},
            )
        return metrics

    @field_validator("end_date")
    @classmethod
    def _dates_in_order(cls, end: date, info: ValidationInfo) -> date:
        # A field validator (not a model one) so the message shows beside the other field errors.
        start = info.data.get("start_date")
        if start is not None and end < start:
            raise ValueError("end_before_start")
        return end


class CampaignUpdate(CampaignIn):
    """A full replacement of a campaign, with the version the client last saw.

    The version is required: without it a replacement would silently overwrite whatever another
    client saved since this one read the campaign.
    """

    version: Annotated[int, Field(ge=1)]


def check_record_size(documents: list[DocumentIn], info: ValidationInfo) -> list[DocumentIn]:
    """Refuse a record whose text, documents included, is past RECORD_MAX_CHARS.

    Runs on ``documents``, the last long field: the text fields before it are in ``info.data``.
    """
    size = sum(len(value) for value in info.data.values() if isinstance(value, str))
    size += sum(len(d.title) + len(d.body) for d in documents)
    if size > RECORD_MAX_CHARS:
        raise PydanticCustomError(
            "record_too_large",
            "整条记录（含文档）共 {size} 万字，超过上限 {limit} 万字：请删减正文或把文档拆成几条",
            {"size": round(size / 10_000, 1), "limit": RECORD_MAX_CHARS // 10_000},
        )
    return documents


def validate_campaign(data: Any, *, update: bool = False) -> CampaignIn:
    """Validate a campaign from JSON, a form or an importer."""
    return validate_as(CampaignUpdate if update else CampaignIn, data)


class FilterQuery(BaseModel):
    """Filters of a campaign list (or an export of it), from a query string."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    industry: Annotated[str | None, Field(max_length=50)] = None
    goal_type: GoalType | None = None
    status: Status | None = None
    date_from: InputDate | None = None
    date_to: InputDate | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # An empty select or date box in the filter form means "any".
        return None if value == "" else value


class ListQuery(FilterQuery):
    """Filters and paging of a campaign list, from the query string of a page or the API."""

    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    per_page: Annotated[int | None, Field(ge=1)] = None


def validate_list_query(args: dict[str, str]) -> ListQuery:
    """Validate list filters from a query string."""
    return validate_as(ListQuery, args)


class LimitQuery(BaseModel):
    """A page size alone, for views that take nothing else."""

    model_config = ConfigDict(extra="ignore")

    limit: Annotated[int, Field(ge=1, le=50)] = 10


class RestoreVersionIn(BaseModel):
    """Restoring a version: optionally the version the client saw as current (409 if it moved)."""

    model_config = ConfigDict(extra="forbid")

    version: Annotated[int, Field(ge=1)] | None = None


class DraftMetricIn(_Strict):
    """A metric the draft targets: its baseline and target, no outcome yet."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    unit: Annotated[str, Field(max_length=20)] = ""
    baseline: Number = None
    target: Number = None
    _values_in_unit = model_validator(mode="before")(values_in_unit)
    # Not a field of a draft: named here only so that a client sending one is told why, in
    # Chinese, at this path, instead of "不认识的字段". Left out of the API document.
    actual: SkipJsonSchema[Any] = Field(default=None, exclude=True)

    @field_validator("actual", mode="before")
    @classmethod
    def _no_outcome_yet(cls, value: Any) -> None:
        if value is not None:
            raise PydanticCustomError("draft_actual", DRAFT_ACTUAL_MESSAGE)


class DraftIn(_Strict):
    """A campaign being drafted: the five elements and plan, no outcomes yet."""

    title: Annotated[str, Field(max_length=200)] = ""
    industry: Annotated[str | None, Field(max_length=50)] = None
    department: Annotated[str | None, Field(max_length=100)] = None
    business_line: Annotated[str | None, Field(max_length=100)] = None
    goal_type: GoalType | None = None
    goal: Annotated[str, Field(max_length=5000)] = ""
    audience: Annotated[list[ListItem], Field(max_length=50)] = []
    products: Annotated[list[ListItem], Field(max_length=100)] = []
    rewards: Annotated[list[RewardIn], Field(max_length=50)] = []
    channels: Annotated[list[ListItem], Field(max_length=50)] = []
    start_date: InputDate | None = None
    end_date: InputDate | None = None
    budget_cny: NonNegative = None
    metrics: Annotated[list[DraftMetricIn], Field(max_length=50)] = []
    summary: Markdown = ""
    documents: Annotated[list[DocumentIn], Field(max_length=20)] = []
    text: Annotated[str, Field(max_length=20_000)] = ""
    tags: Annotated[list[ListItem], Field(max_length=50)] = []
    limit: Annotated[int, Field(ge=1, le=50)] = 10
    # Identifies the draft across requests, so results marked "not useful" stay hidden for it.
    draft_key: Annotated[str | None, Field(max_length=100, pattern=r"^[A-Za-z0-9:_-]+$")] = None
    # The campaign this draft was saved as, if it was: the draft never collides with itself.
    # A campaign whose external_id equals the draft_key counts as saved from it too.
    campaign_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None

    @field_validator("business_line", "industry", "department", "draft_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("end_date")
    @classmethod
    def _dates_in_order(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if start is not None and end is not None and end < start:
            raise ValueError("end_before_start")
        return end

    @model_validator(mode="after")
    def _says_something(self) -> DraftIn:
        if not (self.title or self.goal or self.summary or self.text or self.documents):
            raise ValueError("empty_draft")
        return self


def validate_draft(data: Any) -> DraftIn:
    """Validate a draft from the API or the draft page."""
    return validate_as(DraftIn, data)


class FeedbackIn(_Strict):
    """A planner's verdict on one similar case for one draft."""

    draft_key: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9:_-]+$")]
    campaign_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    useful: bool = False


def validate_feedback(data: Any) -> FeedbackIn:
    """Validate similar-case feedback."""
    return validate_as(FeedbackIn, data)
