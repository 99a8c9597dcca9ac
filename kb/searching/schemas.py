"""The search query schema (text, mode, paging, filters) and the API's shape of a search answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from werkzeug.datastructures import MultiDict

from kb.campaigns.schemas import InputDate, ListItem
from kb.campaigns.serialize import Out
from kb.insights.signals import SignalCode, signal_codes, signal_labels
from kb.searching import conditions
from kb.validation import validate_as
from kb.vocab import GoalType, SearchMode, Status


def _canonical_condition(text: str) -> str:
    # "ROI ≥ 2" and "roi.actual>=2" are one condition: kept in the canonical form.
    try:
        return conditions.parse(text).code
    except conditions.ConditionError as exc:
        raise PydanticCustomError(
            "metric_condition", exc.message.replace("{", "(").replace("}", ")")
        ) from None


def _enumerate_signal_codes(schema: dict[str, Any]) -> None:
    # In the API document: the registered codes, read when the document is built.
    items = schema.get("items")
    if isinstance(items, dict):
        items["enum"] = list(signal_codes())


class SearchQuery(BaseModel):
    """A search: text, mode, paging and filters, from the search page or the API."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    q: Annotated[str, Field(max_length=500, description="查询文本；为空时按筛选条件列出全部")] = ""
    mode: SearchMode = "hybrid"
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=10_000)] = 0
    industry: Annotated[str | None, Field(max_length=50)] = None
    goal_type: GoalType | None = None
    status: Status | None = None
    department: Annotated[str | None, Field(max_length=100)] = None
    business_line: Annotated[str | None, Field(max_length=100)] = None
    audience: Annotated[list[ListItem], Field(description="人群（可重复，须全部命中）")] = []
    channel: list[ListItem] = []
    reward_type: list[ListItem] = []
    date_from: InputDate | None = None
    date_to: InputDate | None = None
    metric_range: Annotated[
        list[Annotated[str, Field(max_length=200), AfterValidator(_canonical_condition)]],
        Field(
            description="指标条件（可重复）：roi.actual>=2、key.attain<80，"
            "或按人写的 ROI ≥ 2、GMV 达成率 < 80%；字段 actual 实际值、attain 达成率 %、lift 较基线 %",
            max_length=20,
        ),
    ] = []
    as_text: Annotated[
        list[Annotated[str, Field(max_length=500)]],
        Field(
            description="按文字搜索、不当作条件的查询片段（可重复，取 recognised_conditions 的 text）："
            "q 里写的比较式（如 GMV 超过 50万）默认识别为指标条件",
            max_length=20,
        ),
    ] = []
    missed: Annotated[bool | None, Field(description="只看有指标未达标的活动")] = None
    signal: Annotated[
        list[SignalCode],
        Field(
            description="只看触发这些数据预警的活动（可重复）",
            json_schema_extra=lambda schema: _enumerate_signal_codes(schema),
        ),
    ] = []
    # False: search the words as typed, without the terms concept cues add (search/concepts.py).
    expand: Annotated[
        bool,
        Field(
            description="false：只搜原词，不加概念提示补充的行业术语（响应的 expanded_terms 为空）"
        ),
    ] = True
    include_weak: Annotated[
        bool,
        Field(
            description=(
                "true：在达标结果之后也返回低于相关性门槛的“可能相关”结果（每条 weak=true），"
                "不计入 total 与分面"
            )
        ),
    ] = False

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any, info: ValidationInfo) -> Any:
        # An empty box in the search form means "any"; an empty query means "list everything".
        if isinstance(value, list):
            return [v for v in value if v != ""]
        if value == "" and info.field_name == "expand":
            return True  # no choice made: the default
        if value == "" and info.field_name == "include_weak":
            return False
        return None if value == "" and info.field_name != "q" else value

    @field_validator("signal")
    @classmethod
    def _registered_signal(cls, codes: list[SignalCode]) -> list[SignalCode]:
        # The codes come from the signal registry, so a newly registered rule is a filter at once.
        known = signal_codes()
        if any(code not in known for code in codes):
            names = "、".join(signal_labels().values())
            raise PydanticCustomError(
                "signal_unknown", "取值须为以下之一：{names}", {"names": names}
            )
        return codes


# Search parameters that may repeat in a query string (?audience=宝妈&audience=新用户).
SEARCH_LIST_PARAMS = ("audience", "channel", "reward_type", "metric_range", "signal", "as_text")


def search_params(args: MultiDict[str, str]) -> dict[str, Any]:
    """Return query-string parameters with the repeatable ones as lists."""
    return {**args.to_dict(), **{key: args.getlist(key) for key in SEARCH_LIST_PARAMS}}


def validate_search_query(args: dict[str, Any]) -> SearchQuery:
    """Validate search parameters from a query string."""
    return validate_as(SearchQuery, args)


class SearchResultOut(Out):
    """One search result: the campaign's headline facts, a highlighted snippet and reasons."""

    id: int
    title: str
    title_html: str
    score: float
    snippet: str
    reasons: list[str]
    matched_terms: list[str]
    industry: str
    goal_type: GoalType
    status: Status
    start_date: date
    end_date: date
    weak: bool = Field(
        description="低于相关性门槛（可能相关）：只在 include_weak=true 时返回，不计入 total",
    )
    semantic_strength: Literal["high", "medium", "low"] | None = Field(
        description="语义匹配强度（按本库校准的门槛）：high 高度相关、medium 相关、low 弱相关；"
        "未经语义匹配或门槛未启用时为空",
    )


class RecognisedConditionOut(Out):
    """A condition read from the query text: filtered on, not searched as words."""

    code: str = Field(
        description="规范写法：条件与 metric_range 相同，如 gmv.actual>500000；"
        "“ROI 最高”“获客成本最低”这类排序写作 roi.actual:desc、cac.actual:asc"
    )
    label: str = Field(description="中文说明，如 GMV 实际值 ＞ 50万")
    text: str = Field(description="查询中被识别的原文片段；放进 as_text 则改为按文字搜索")


class UnreadConditionOut(Out):
    """A fragment written as a condition whose unit does not fit its metric: searched as words."""

    text: str = Field(description="查询中的原文片段，如 GMV 超过 50万单")
    reason: str = Field(description="中文说明：为什么没有当作条件，以及该怎么写")


class SearchResponseOut(Out):
    """A page of search results with facet counts over the whole result set."""

    query: str
    mode: str
    total: int
    took_ms: float
    results: list[SearchResultOut]
    facets: dict[str, dict[str, int]]
    expanded_terms: list[str] = Field(
        description="查询中的情境补充的行业术语（概念提示）；expand=false 时为空"
    )
    weak_total: int = Field(
        description="低于相关性门槛、未计入 total 的可能相关结果数（include_weak=true 时随结果返回）",
    )
    recognised_conditions: list[RecognisedConditionOut] = Field(
        description="从 q 中识别出的指标条件（如“GMV 超过 50万”“预算 100万 以上”）：与筛选条件"
        "同时生效（且），不再按文字搜索；只有条件的查询按该条件的数值排序。“ROI 最高”“lowest CAC”"
        "这类排序只保留有该数值的活动，由其余文字决定范围，结果按该数值排列",
    )
    unread_conditions: list[UnreadConditionOut] = Field(
        description="写成条件、但单位与指标不符而按文字搜索的片段（如“GMV 超过 50万单”），附原因",
    )
    empty_reason: Literal["out_of_scope", "reversed_dates", "no_match"] | None = Field(
        description="total 为 0 的原因：out_of_scope 库中没有足够相关的活动；"
        "reversed_dates 起始日期晚于截止日期；no_match 没有匹配",
    )
