"""The OpenAPI 3.1 document of the JSON API, built from the same pydantic schemas it validates with."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from kb.accounts.services import ROLE_LABELS
from kb.campaigns.schemas import (
    CampaignIn,
    CampaignUpdate,
    DocumentIn,
    DraftIn,
    FeedbackIn,
    HypothesisIn,
    RestoreVersionIn,
    RewardIn,
)
from kb.insights.openapi import ID_SCHEMA
from kb.insights.openapi import models as insights_openapi_models
from kb.insights.openapi import paths as insights_openapi_paths
from kb.insights.signals import signal_codes
from kb.transfer.openapi import paths as transfer_openapi_paths
from kb.vocab import GOAL_TYPES, STATUSES, GoalType, Status


class MetricOut(BaseModel):
    """A stored metric with its catalog key and assessment (percentages, rounded to 0.1)."""

    name: str
    unit: str
    baseline: float | None
    target: float | None
    actual: float | None
    catalog_key: str | None
    direction: str | None
    attainment_pct: float | None
    lift_pct: float | None
    hit: bool | None


class CampaignOut(BaseModel):
    """A stored campaign as the API returns it."""

    id: int
    version: int
    title: str
    industry: str
    department: str
    business_line: str | None
    goal_type: GoalType
    goal: str
    audience: list[str]
    products: list[str]
    rewards: list[RewardIn]
    channels: list[str]
    start_date: date
    end_date: date
    status: Status
    budget_cny: float | None
    metrics: list[MetricOut]
    summary: str
    went_well: str
    problems: str
    lessons: str
    recommendations: str
    hypotheses: list[HypothesisIn]
    documents: list[DocumentIn]
    tags: list[str]
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class CampaignList(BaseModel):
    """One page of campaigns."""

    items: list[CampaignOut]
    total: int
    page: int
    per_page: int
    pages: int


class SearchResultOut(BaseModel):
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


class SearchResponseOut(BaseModel):
    """A page of search results with facet counts over the whole result set."""

    query: str
    mode: str
    total: int
    took_ms: float
    results: list[SearchResultOut]
    facets: dict[str, dict[str, int]]


class SimilarCaseOut(BaseModel):
    """A completed campaign like the draft, why it matched, and what it achieved and taught."""

    id: int
    title: str
    score: float
    reasons: list[str]
    parts: dict[str, float]
    industry: str
    goal_type: GoalType
    start_date: date
    end_date: date
    outcome: dict[str, MetricOut]
    went_well: str
    problems: str
    lessons: str
    recommendations: str


class ConflictOut(BaseModel):
    """A planned or running campaign the draft collides with."""

    id: int | None
    title: str
    overlap_days: int
    overlap_start: date
    overlap_end: date
    shared_audience: list[str]
    shared_products: list[str]
    stacking_risk: bool
    worst_case_discount_pct: float | None
    worst_case_amount_cny: float | None
    reasons: list[str]
    severity: str


class MetricForecastOut(BaseModel):
    """The range a draft metric is likely to land in, from the nearest analogs that measured it."""

    model_config = ConfigDict(extra="allow")

    name: str
    key: str | None
    n: int
    p25: float | None
    median: float | None
    p75: float | None
    hit_rate: float | None
    enough: bool
    summary: str


class ForecastOut(BaseModel):
    """The forecast of every metric the draft targets."""

    metrics: list[MetricForecastOut]


class DraftAnalysisOut(BaseModel):
    """Similar cases, collisions and a forecast for a draft."""

    similar: list[SimilarCaseOut]
    conflicts: list[ConflictOut]
    forecast: ForecastOut
    comparison: list[dict[str, Any]]
    hidden: int
    notes: list[str]
    took_ms: float


VersionAction = Literal["baseline", "create", "update", "import", "trash", "restore", "revert"]


class VersionOut(BaseModel):
    """One version in a campaign's history: what happened, who did it, when, what changed."""

    version: int
    action: VersionAction
    actor: str | None = Field(
        description="谁写的：user:<用户名> 或 token:<id>:<名称>；无记录时为 null"
    )
    note: str
    created_at: datetime
    changed_fields: list[str] = Field(description="与上一版相比改动的字段（中文名）")


class VersionList(BaseModel):
    """A campaign's versions, newest first."""

    items: list[VersionOut]


class DiffLineOut(BaseModel):
    """One line of a field's diff: " " kept, "-" removed, "+" added."""

    op: Literal[" ", "-", "+"]
    text: str


class FieldChangeOut(BaseModel):
    """How one field changed from the previous version."""

    field: str
    label: str
    lines: list[DiffLineOut]


class VersionDetailOut(VersionOut):
    """One version with the campaign as it was then and its diff against the previous version."""

    snapshot: dict[str, Any] = Field(
        description="该版本的活动字段（与 CampaignIn 同形，不含 id、version 与时间戳）"
    )
    changes: list[FieldChangeOut]


class ErrorDetail(BaseModel):
    """What went wrong: a code, a message, and for validation errors one message per field."""

    code: str
    message: str
    fields: dict[str, str] | None = None
    current_version: int | None = None


class Error(BaseModel):
    """The one error shape of the API."""

    error: ErrorDetail


_MODELS: tuple[type[BaseModel], ...] = (
    CampaignIn,
    CampaignUpdate,
    CampaignOut,
    CampaignList,
    SearchResponseOut,
    DraftIn,
    FeedbackIn,
    DraftAnalysisOut,
    VersionList,
    VersionDetailOut,
    RestoreVersionIn,
    Error,
)
_INPUT_MODELS = (CampaignIn, CampaignUpdate, DraftIn, FeedbackIn, RestoreVersionIn)
_REF = "#/components/schemas/{model}"


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "错误", "content": _json("Error")} for s in statuses}


_ID = {"name": "campaign_id", "in": "path", "required": True, "schema": ID_SCHEMA}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": ID_SCHEMA}
_LIST_PARAMS = [
    {"name": "industry", "in": "query", "schema": {"type": "string"}},
    {"name": "goal_type", "in": "query", "schema": {"$ref": "#/components/schemas/GoalType"}},
    {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/Status"}},
    {"name": "date_from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "date_to", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
]


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        param["description"] = description
    return param


_TEXT = {"type": "string"}
_TEXT_LIST = {"type": "array", "items": {"type": "string"}}
_SEARCH_PARAMS = [
    _query("q", _TEXT, "查询文本；为空时按筛选条件列出全部"),
    _query("mode", {"type": "string", "enum": ["keyword", "semantic", "hybrid"]}),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
    _query("offset", {"type": "integer", "minimum": 0}),
    _query("industry", _TEXT),
    _query("goal_type", {"$ref": "#/components/schemas/GoalType"}),
    _query("status", {"$ref": "#/components/schemas/Status"}),
    _query("department", _TEXT),
    _query("business_line", _TEXT),
    _query("audience", _TEXT_LIST, "人群（可重复，须全部命中）"),
    _query("channel", _TEXT_LIST),
    _query("reward_type", _TEXT_LIST),
    _query("date_from", {"type": "string", "format": "date"}),
    _query("date_to", {"type": "string", "format": "date"}),
    _query("metric_range", _TEXT_LIST, "如 roi.actual>=2、key.attain<80（可重复）"),
    _query("missed", {"type": "boolean"}, "只看有指标未达标的活动"),
    _query(
        "signal",
        {"type": "array", "items": {"type": "string", "enum": list(signal_codes())}},
        "只看触发这些数据预警的活动（可重复）",
    ),
    _query(
        "expand",
        {"type": "boolean", "default": True},
        "false：只搜原词，不加概念提示补充的行业术语（响应的 expanded_terms 为空）",
    ),
]


@cache
def build_document() -> dict[str, Any]:
    """Return the OpenAPI document (built once; it only changes with the code)."""
    _, definitions = models_json_schema(
        [(model, "validation" if model in _INPUT_MODELS else "serialization")
         for model in _MODELS] + insights_openapi_models(),
        ref_template=_REF,
    )  # fmt: skip
    schemas = definitions["$defs"]
    schemas["GoalType"] = {"type": "string", "enum": list(GOAL_TYPES)}
    schemas["Status"] = {"type": "string", "enum": list(STATUSES)}
    campaign = {"200": {"description": "活动", "content": _json("CampaignOut")}}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Campaign KB API", "version": "1"},
        "paths": {
            "/api/v1/campaigns": {
                "get": {
                    "summary": "列出活动 (List campaigns)",
                    "operationId": "listCampaigns",
                    "parameters": _LIST_PARAMS,
                    "responses": {
                        "200": {"description": "一页活动", "content": _json("CampaignList")},
                        **_errors(422),
                    },
                },
                "post": {
                    "summary": "创建活动 (Create a campaign)",
                    "operationId": "createCampaign",
                    "requestBody": {"required": True, "content": _json("CampaignIn")},
                    "responses": {
                        "201": {
                            "description": "已创建",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": _json("CampaignOut"),
                        },
                        **_errors(400, 413, 415, 422),
                    },
                },
            },
            "/api/v1/campaigns/{campaign_id}": {
                "parameters": [_ID],
                "get": {
                    "summary": "读取活动 (Get a campaign)",
                    "operationId": "getCampaign",
                    "responses": {**campaign, **_errors(404)},
                },
                "put": {
                    "summary": "替换活动 (Replace a campaign; a stale version gets 409)",
                    "operationId": "updateCampaign",
                    "requestBody": {"required": True, "content": _json("CampaignUpdate")},
                    "responses": {**campaign, **_errors(400, 404, 409, 413, 415, 422)},
                },
                "delete": {
                    "summary": "移入回收站 (Move a campaign to the trash)",
                    "operationId": "deleteCampaign",
                    "responses": {"204": {"description": "已移入回收站"}, **_errors(404)},
                },
            },
            "/api/v1/campaigns/{campaign_id}/versions": {
                "parameters": [_ID],
                "get": {
                    "summary": "活动的历史版本 (A campaign's versions, newest first)",
                    "operationId": "listCampaignVersions",
                    "description": "回收站中的活动也可查看。",
                    "responses": {
                        "200": {"description": "版本列表", "content": _json("VersionList")},
                        **_errors(404),
                    },
                },
            },
            "/api/v1/campaigns/{campaign_id}/versions/{version}": {
                "parameters": [_ID, _VERSION],
                "get": {
                    "summary": "某一版本及其与上一版的差异 (One version and its diff)",
                    "operationId": "getCampaignVersion",
                    "description": "回收站中的活动也可查看；活动或版本不存在时 404。",
                    "responses": {
                        "200": {"description": "版本", "content": _json("VersionDetailOut")},
                        **_errors(404),
                    },
                },
            },
            "/api/v1/campaigns/{campaign_id}/versions/{version}/restore": {
                "parameters": [_ID, _VERSION],
                "post": {
                    "summary": "恢复到某一版本 (Make a version current again, as a new version)",
                    "operationId": "restoreCampaignVersion",
                    "description": (
                        '可选请求体 {"version": 当前版本号}：活动已被改过时 409（含 current_version）。'
                        "回收站中的活动须先恢复（否则 404）；旧版本已不符合现行校验时 422。"
                    ),
                    "requestBody": {"required": False, "content": _json("RestoreVersionIn")},
                    "responses": {**campaign, **_errors(400, 404, 409, 413, 415, 422)},
                },
            },
            "/api/v1/trash": {
                "get": {
                    "summary": "回收站 (Campaigns in the trash, one page)",
                    "operationId": "listTrash",
                    "parameters": [
                        _query("page", {"type": "integer", "minimum": 1}),
                        _query("per_page", {"type": "integer", "minimum": 1}),
                    ],
                    "responses": {
                        "200": {
                            "description": "一页已删除的活动",
                            "content": _json("CampaignList"),
                        },
                        **_errors(422),
                    },
                }
            },
            "/api/v1/trash/{campaign_id}/restore": {
                "parameters": [_ID],
                "post": {
                    "summary": "从回收站恢复 (Restore a campaign from the trash)",
                    "operationId": "restoreFromTrash",
                    "description": "活动不在回收站中时 404。",
                    "responses": {**campaign, **_errors(404)},
                },
            },
            "/api/v1/trash/{campaign_id}": {
                "parameters": [_ID],
                "delete": {
                    "summary": "彻底删除 (Delete a trashed campaign for good, with its history)",
                    "operationId": "purgeFromTrash",
                    "description": "只能删除回收站中的活动，否则 404。",
                    "responses": {"204": {"description": "已彻底删除"}, **_errors(404)},
                },
            },
            "/api/v1/search": {
                "get": {
                    "summary": "搜索活动 (Search campaigns: keyword, semantic or hybrid)",
                    "operationId": "searchCampaigns",
                    "parameters": _SEARCH_PARAMS,
                    "responses": {
                        "200": {"description": "搜索结果", "content": _json("SearchResponseOut")},
                        **_errors(422),
                    },
                }
            },
            "/api/v1/similar": {
                "post": {
                    "summary": "草案的相似案例、冲突与推演 (Similar cases, collisions, forecast)",
                    "operationId": "similarForDraft",
                    "requestBody": {"required": True, "content": _json("DraftIn")},
                    "responses": {
                        "200": {"description": "草案分析", "content": _json("DraftAnalysisOut")},
                        **_errors(400, 413, 415, 422),
                    },
                }
            },
            "/api/v1/campaigns/{campaign_id}/similar": {
                "parameters": [_ID],
                "get": {
                    "summary": "已有活动的相似案例、冲突与推演",
                    "operationId": "similarForCampaign",
                    "parameters": [
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 50})
                    ],
                    "responses": {
                        "200": {"description": "分析", "content": _json("DraftAnalysisOut")},
                        **_errors(404, 422),
                    },
                },
            },
            "/api/v1/similar/feedback": {
                "post": {
                    "summary": "标记某个相似案例对该草案无用（或恢复）",
                    "operationId": "similarFeedback",
                    "requestBody": {"required": True, "content": _json("FeedbackIn")},
                    "responses": {"204": {"description": "已记录"}, **_errors(400, 404, 415, 422)},
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "本文档 (This document)",
                    "operationId": "openapi",
                    "responses": {"200": {"description": "OpenAPI 文档"}},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "API 令牌：Authorization: Bearer <令牌>（管理员在“令牌”页面或用 "
                        "flask tokens create 创建）。缺少或无效的令牌 401，角色不够 403。"
                    ),
                }
            },
        },
        "security": [{"bearerAuth": []}],
    }
    document["paths"].update(transfer_openapi_paths())
    document["paths"].update(insights_openapi_paths())
    _declare_access(document["paths"])
    return document


# The lowest role whose token each operation accepts (None: public, no token), by operationId.
# It mirrors the views' @requires declarations; tests/test_api.py checks the two agree.
ROLES: dict[str, str | None] = {
    "listCampaigns": "viewer",
    "createCampaign": "editor",
    "getCampaign": "viewer",
    "updateCampaign": "editor",
    "deleteCampaign": "editor",
    "listCampaignVersions": "viewer",
    "getCampaignVersion": "viewer",
    "restoreCampaignVersion": "editor",
    "listTrash": "editor",
    "restoreFromTrash": "editor",
    "purgeFromTrash": "admin",
    "searchCampaigns": "viewer",
    "similarForDraft": "viewer",
    "similarForCampaign": "viewer",
    "similarFeedback": "editor",
    "openapi": None,
    "importCampaigns": "editor",
    "exportCampaigns": "viewer",
    "getPortfolio": "viewer",
    "searchLessons": "viewer",
    "listPlaybooks": "viewer",
    "createPlaybook": "editor",
    "getPlaybook": "viewer",
    "updatePlaybook": "editor",
    "deletePlaybook": "editor",
    "campaignSignals": "viewer",
}
_ROLE_NOTES: dict[str | None, str] = {
    None: "公开，无需令牌。",
    "viewer": (
        "需要查看者令牌（查看者、编辑者、管理员均可）；读取也接受已登录的浏览器会话，"
        "开启 KB_PUBLIC_READ 时无需登录。"
    ),
    "editor": "需要编辑者令牌（编辑者或管理员）；通过 API 写入只认令牌，不认浏览器会话。",
    "admin": "需要管理员令牌。",
}


_UNAUTHORIZED = {
    "viewer": "缺少令牌（且未登录）、令牌无效或已被吊销",
    "editor": "缺少令牌、令牌无效或已被吊销；只有浏览器会话时也是 401（写入须用令牌）",
    "admin": "缺少令牌、令牌无效或已被吊销；只有浏览器会话时也是 401（写入须用令牌）",
}


def _declare_access(paths: dict[str, Any]) -> None:
    """Add to each operation who may call it (a note, ``x-required-role``, 401, 403) and 429."""
    for item in paths.values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            role = ROLES[operation["operationId"]]  # a new operation must say who may call it
            note = _ROLE_NOTES[role]
            described = operation.get("description")
            operation["description"] = f"{described}\n\n{note}" if described else note
            operation["x-required-role"] = role
            responses = operation["responses"]
            # The rate limit counts every request to /api/, this document's included.
            responses["429"] = {
                "description": "请求过于频繁（KB_RATELIMIT_API）",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                "content": _json("Error"),
            }
            if role is None:
                operation["security"] = []
            else:
                responses["401"] = {
                    "description": _UNAUTHORIZED[role],
                    "headers": {
                        "WWW-Authenticate": {
                            "required": True,
                            "schema": {"type": "string"},
                            "description": 'Bearer realm="campaign-kb"',
                        }
                    },
                    "content": _json("Error"),
                }
            if role in ("editor", "admin"):
                responses["403"] = {
                    "description": f"令牌的角色低于{ROLE_LABELS[role]}",
                    "content": _json("Error"),
                }
            operation["responses"] = dict(sorted(responses.items()))
