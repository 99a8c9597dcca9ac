"""The one validation schema of a campaign, shared by the web form, the JSON API and importers."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from werkzeug.datastructures import MultiDict

from kb.database import MAX_ID
from kb.insights.signals import SignalCode, signal_codes

GoalType = Literal[
    "acquisition", "activation", "retention", "reactivation", "conversion", "gmv", "brand", "referral"
]  # fmt: skip
Status = Literal["planned", "running", "completed", "cancelled"]
DocumentKind = Literal["strategy", "plan", "deck", "other"]
HypothesisResult = Literal["validated", "refuted", "inconclusive"]

GOAL_TYPES: tuple[str, ...] = get_args(GoalType)
STATUSES: tuple[str, ...] = get_args(Status)
DOCUMENT_KINDS: tuple[str, ...] = get_args(DocumentKind)
HYPOTHESIS_RESULTS: tuple[str, ...] = get_args(HypothesisResult)

MARKDOWN_MAX = 100_000
ModelT = TypeVar("ModelT", bound=BaseModel)


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("not_finite")
    return value


Number = Annotated[float | None, AfterValidator(_finite)]
# The bound sits inside the Optional: pydantic cannot compare None with it.
NonNegative = Annotated[Annotated[float, Field(ge=0)] | None, AfterValidator(_finite)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
ListItem = Annotated[str, Field(min_length=1, max_length=100)]
Markdown = Annotated[str, Field(max_length=MARKDOWN_MAX)]


class _Strict(BaseModel):
    # An allow-list: a field the schema does not name is an error, never silently stored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
    start_date: date
    end_date: date
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

    @field_validator("end_date")
    @classmethod
    def _dates_in_order(cls, end: date, info: ValidationInfo) -> date:
        # A field validator (not a model one) so the message shows beside the other field errors.
        start = info.data.get("start_date")
        if start is not None and end < start:
            raise ValueError("end_before_start")
        return end


class CampaignUpdate(CampaignIn):
    """A full replacement of a campaign, with the version the client last saw."""

    version: Annotated[int | None, Field(ge=1)] = None


class InvalidInputError(Exception):
    """Input that failed validation, with one message per offending field (dotted paths)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("invalid input")
        self.fields = fields


def validate_as(model: type[ModelT], data: Any) -> ModelT:
    """Validate raw input against ``model``; raise InvalidInputError naming each bad field."""
    if not isinstance(data, dict):
        raise InvalidInputError({"": "请求体应为 JSON 对象 (expected a JSON object)"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(field_errors(exc)) from None


def validate_campaign(data: Any, *, update: bool = False) -> CampaignIn:
    """Validate a campaign from JSON, a form or an importer."""
    return validate_as(CampaignUpdate if update else CampaignIn, data)


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Turn pydantic errors into ``{"metrics.0.target": "请输入数字"}``, first error per field."""
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        location = [str(part) for part in error["loc"]]
        message = _message(error["type"], error.get("ctx") or {}, str(error.get("msg", "")))
        if message == MESSAGES["empty_draft"]:
            location = ["title"]  # shown where the user starts filling in
        fields.setdefault(".".join(location), message)
    return fields


MESSAGES = {
    "missing": "必填",
    "end_before_start": "结束日期不能早于开始日期",
    "not_finite": "请输入有限的数字",
    "empty_draft": "请至少填写活动名称、目标或方案描述中的一项",
    "extra_forbidden": "不认识的字段",
    "string_type": "应为文本",
    "list_type": "应为列表",
    "bool_type": "应为是/否 (true/false)",
    "bool_parsing": "应为是/否 (true/false)",
    "float_type": "请输入数字",
    "float_parsing": "请输入数字",
    "int_type": "请输入整数",
    "int_parsing": "请输入整数",
    "int_from_float": "请输入整数",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_inexact": "日期格式应为 YYYY-MM-DD",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "dict_type": "应为对象",
}


def _message(kind: str, ctx: dict[str, Any], fallback: str) -> str:
    if kind == "value_error":
        reason = str(ctx.get("error", ""))
        return MESSAGES.get(reason, "取值无效")
    if kind in ("string_too_short", "too_short"):
        return "必填" if ctx.get("min_length") == 1 else f"至少 {ctx.get('min_length')} 项"
    if kind == "string_pattern_mismatch":
        return "格式应如 roi.actual>=2 或 key.attain<80"
    if kind == "string_too_long":
        return f"不能超过 {ctx.get('max_length')} 个字符"
    if kind == "too_long":
        return f"最多 {ctx.get('max_length')} 项"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"取值须为以下之一：{expected}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"不能小于 {ctx.get('ge', ctx.get('gt'))}"
    return MESSAGES.get(kind, fallback or "取值无效")


class ListQuery(BaseModel):
    """Filters and paging of a campaign list, from the query string of a page or the API."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    industry: Annotated[str | None, Field(max_length=50)] = None
    goal_type: GoalType | None = None
    status: Status | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    per_page: Annotated[int | None, Field(ge=1)] = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # An empty select or date box in the filter form means "any".
        return None if value == "" else value


def validate_list_query(args: dict[str, str]) -> ListQuery:
    """Validate list filters from a query string."""
    return validate_as(ListQuery, args)


SearchMode = Literal["keyword", "semantic", "hybrid"]
# "roi.actual>=2", "key.attain<80": a catalog key (or "key", the campaign's key metric), a
# field, a comparison and a number.
METRIC_RANGE = re.compile(r"^([a-z0-9_]+)\.(actual|attain|lift)(>=|<=|>|<)(-?\d+(?:\.\d+)?)$")


class SearchQuery(BaseModel):
    """A search: text, mode, paging and filters, from the search page or the API."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    q: Annotated[str, Field(max_length=500)] = ""
    mode: SearchMode = "hybrid"
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=10_000)] = 0
    industry: Annotated[str | None, Field(max_length=50)] = None
    goal_type: GoalType | None = None
    status: Status | None = None
    department: Annotated[str | None, Field(max_length=100)] = None
    business_line: Annotated[str | None, Field(max_length=100)] = None
    audience: list[ListItem] = []
    channel: list[ListItem] = []
    reward_type: list[ListItem] = []
    date_from: date | None = None
    date_to: date | None = None
    metric_range: list[Annotated[str, Field(pattern=METRIC_RANGE.pattern)]] = []
    missed: bool | None = None
    signal: list[SignalCode] = []
    # False: search the words as typed, without the terms concept cues add (search/concepts.py).
    expand: bool = True

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any, info: ValidationInfo) -> Any:
        # An empty box in the search form means "any"; an empty query means "list everything".
        if isinstance(value, list):
            return [v for v in value if v != ""]
        if value == "" and info.field_name == "expand":
            return True  # no choice made: the default
        return None if value == "" and info.field_name != "q" else value

    @field_validator("signal")
    @classmethod
    def _registered_signal(cls, codes: list[SignalCode]) -> list[SignalCode]:
        # The codes come from the signal registry, so a newly registered rule is a filter at once.
        known = signal_codes()
        if any(code not in known for code in codes):
            expected = " or ".join(f"'{code}'" for code in known)
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": expected}
            )
        return codes


# Search parameters that may repeat in a query string (?audience=宝妈&audience=新用户).
SEARCH_LIST_PARAMS = ("audience", "channel", "reward_type", "metric_range", "signal")


def search_params(args: MultiDict[str, str]) -> dict[str, Any]:
    """Return query-string parameters with the repeatable ones as lists."""
    return {**args.to_dict(), **{key: args.getlist(key) for key in SEARCH_LIST_PARAMS}}


class LimitQuery(BaseModel):
    """A page size alone, for views that take nothing else."""

    model_config = ConfigDict(extra="ignore")

    limit: Annotated[int, Field(ge=1, le=50)] = 10


class RestoreVersionIn(BaseModel):
    """Restoring a version: optionally the version the client saw as current (409 if it moved)."""

    model_config = ConfigDict(extra="forbid")

    version: Annotated[int, Field(ge=1)] | None = None


def validate_search_query(args: dict[str, Any]) -> SearchQuery:
    """Validate search parameters from a query string."""
    return validate_as(SearchQuery, args)


class DraftMetricIn(_Strict):
    """A metric the draft targets."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    unit: Annotated[str, Field(max_length=20)] = ""
    target: Number = None


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
    start_date: date | None = None
    end_date: date | None = None
    budget_cny: NonNegative = None
    metrics: Annotated[list[DraftMetricIn], Field(max_length=50)] = []
    summary: Markdown = ""
    documents: Annotated[list[DocumentIn], Field(max_length=20)] = []
    text: Annotated[str, Field(max_length=20_000)] = ""
    tags: Annotated[list[ListItem], Field(max_length=50)] = []
    limit: Annotated[int, Field(ge=1, le=50)] = 10
    # Identifies the draft across requests, so results marked "not useful" stay hidden for it.
    draft_key: Annotated[str | None, Field(max_length=100, pattern=r"^[A-Za-z0-9:_-]+$")] = None

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
