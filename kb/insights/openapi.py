"""The OpenAPI part of the portfolio, lessons, playbook and signal API, merged by kb.api.openapi.

``models()`` lists the pydantic models (with the JSON-schema mode each is rendered in) and
``paths()`` the path items; both refer to components by name (``#/components/schemas/X``),
including the shared ``Error``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel

from kb.database import MAX_ID
from kb.insights.schemas import LessonKind, PlaybookIn, PlaybookUpdate, Theme
from kb.vocab import GoalType, Status

SchemaMode = Literal["validation", "serialization"]


class SignalOut(BaseModel):
    """A warning signal: which rule fired, how bad, and why (with the campaign's numbers)."""

    code: str  # a registered rule code (kb.insights.signals.RULES)
    label: str
    severity: Literal["high", "medium"]
    explanation: str
    rule: str
    metrics: list[str]


class CampaignSignalsOut(BaseModel):
    """The warning signals of one campaign and the thresholds they were judged by."""

    campaign_id: int
    signals: list[SignalOut]
    thresholds: dict[str, float]


class KeyMetricOut(BaseModel):
    """A campaign's key metric (its first with a target) and how it turned out."""

    name: str
    attainment_pct: float | None
    hit: bool | None


class PortfolioCampaignOut(BaseModel):
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


class CrowdingOut(BaseModel):
    """Campaigns per audience segment (rows) and month (columns); crowded from ``crowded_at``."""

    segments: list[str]
    months: list[str]
    counts: list[list[int]]
    crowded_at: int


class GoalSummaryOut(BaseModel):
    """One goal type (or the total, goal_type null): count, budget, reward spend and results.

    ``reward_spend_cny`` is null when no campaign reported its reward cost as a metric;
    ``hit_share_pct`` and ``median_attainment_pct`` are over ``judged`` completed campaigns.
    """

    goal_type: GoalType | None
    label: str
    campaigns: int
    budget_cny: float
    budget_known: int
    reward_spend_cny: float | None
    reward_spend_known: int
    judged: int
    hit: int
    hit_share_pct: float | None
    median_attainment_pct: float | None
    attainment_n: int


class PortfolioOut(BaseModel):
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


class LessonOutcomeOut(BaseModel):
    """What the lesson's campaign achieved."""

    key_metric: KeyMetricOut | None
    hit: int
    judged: int


class LessonItemOut(BaseModel):
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


class CitedCampaignOut(BaseModel):
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


class PlaybookOut(BaseModel):
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
    created_at: datetime
    updated_at: datetime


class PlaybookList(BaseModel):
    """Playbooks, most recently updated first."""

    items: list[PlaybookOut]


class LessonSearchOut(BaseModel):
    """Lessons found (one page), counts per theme, and the playbooks on the same subject."""

    q: str
    theme: Theme | None
    kind: LessonKind | None
    total: int
    partial: bool
    theme_counts: dict[str, int]
    items: list[LessonItemOut]
    playbooks: list[PlaybookOut]


def models() -> list[tuple[type[BaseModel], SchemaMode]]:
    """Return the models to add to the document's components, each with its schema mode."""
    return [
        (PlaybookIn, "validation"),
        (PlaybookUpdate, "validation"),
        (PortfolioOut, "serialization"),
        (LessonSearchOut, "serialization"),
        (PlaybookOut, "serialization"),
        (PlaybookList, "serialization"),
        (CampaignSignalsOut, "serialization"),
    ]


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "错误", "content": _json("Error")} for s in statuses}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        param["description"] = description
    return param


_THEMES = ["reward", "audience", "channel", "timing", "budget", "ops", "risk", "other"]
_DATE = {"type": "string", "format": "date"}
# Ids in paths: positive and within what the database holds (a larger one is no route: 404).
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_PLAYBOOK_ID = {
    "name": "playbook_id",
    "in": "path",
    "required": True,
    "schema": ID_SCHEMA,
}
_CAMPAIGN_ID = {
    "name": "campaign_id",
    "in": "path",
    "required": True,
    "schema": ID_SCHEMA,
}


def paths() -> dict[str, Any]:
    """Return the path items of the portfolio, lessons, playbooks and signals endpoints."""
    playbook = {"200": {"description": "打法", "content": _json("PlaybookOut")}}
    return {
        "/api/v1/portfolio": {
            "get": {
                "summary": "活动组合 (Portfolio: timeline, audience crowding, results per goal)",
                "operationId": "getPortfolio",
                "parameters": [
                    _query("date_from", _DATE, "期间开始；缺省为去年 1 月 1 日"),
                    _query("date_to", _DATE, "期间结束；缺省为今年 12 月 31 日（最长 60 个月）"),
                    _query("goal_type", {"$ref": "#/components/schemas/GoalType"}),
                    _query("business_line", {"type": "string"}),
                ],
                "responses": {
                    "200": {"description": "活动组合", "content": _json("PortfolioOut")},
                    **_errors(422),
                },
            }
        },
        "/api/v1/lessons": {
            "get": {
                "summary": "搜索经验教训 (Search lessons, recommendations and tested hypotheses)",
                "operationId": "searchLessons",
                "parameters": [
                    _query("q", {"type": "string"}, "关键词；为空时列出全部"),
                    _query("theme", {"type": "string", "enum": _THEMES}),
                    _query(
                        "kind",
                        {"type": "string", "enum": ["lesson", "recommendation", "hypothesis"]},
                    ),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                    _query("offset", {"type": "integer", "minimum": 0}),
                ],
                "responses": {
                    "200": {"description": "经验条目", "content": _json("LessonSearchOut")},
                    **_errors(422),
                },
            }
        },
        "/api/v1/playbooks": {
            "get": {
                "summary": "列出打法 (List playbooks)",
                "operationId": "listPlaybooks",
                "parameters": [_query("theme", {"type": "string", "enum": _THEMES})],
                "responses": {
                    "200": {"description": "打法列表", "content": _json("PlaybookList")},
                    **_errors(422),
                },
            },
            "post": {
                "summary": "创建打法 (Create a playbook)",
                "operationId": "createPlaybook",
                "requestBody": {"required": True, "content": _json("PlaybookIn")},
                "responses": {
                    "201": {
                        "description": "已创建",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": _json("PlaybookOut"),
                    },
                    **_errors(400, 413, 415, 422),
                },
            },
        },
        "/api/v1/playbooks/{playbook_id}": {
            "parameters": [_PLAYBOOK_ID],
            "get": {
                "summary": "读取打法 (Get a playbook)",
                "operationId": "getPlaybook",
                "responses": {**playbook, **_errors(404)},
            },
            "put": {
                "summary": "替换打法 (Replace a playbook; a stale version gets 409)",
                "operationId": "updatePlaybook",
                "requestBody": {"required": True, "content": _json("PlaybookUpdate")},
                "responses": {**playbook, **_errors(400, 404, 409, 413, 415, 422)},
            },
            "delete": {
                "summary": "删除打法 (Delete a playbook)",
                "operationId": "deletePlaybook",
                "responses": {"204": {"description": "已删除"}, **_errors(404)},
            },
        },
        "/api/v1/campaigns/{campaign_id}/signals": {
            "parameters": [_CAMPAIGN_ID],
            "get": {
                "summary": "活动的数据预警 (Warning signals of a campaign)",
                "operationId": "campaignSignals",
                "responses": {
                    "200": {"description": "预警", "content": _json("CampaignSignalsOut")},
                    **_errors(404),
                },
            },
        },
    }
