"""The insights endpoints of the JSON API: portfolio, lessons, playbooks and a campaign's signals."""

from __future__ import annotations

from datetime import date

from flask import Response, request, url_for

from kb.access import Access, requires
from kb.api import bp
from kb.api.operation import operation, respond
from kb.campaigns import services
from kb.errors import json_body
from kb.insights import lessons, playbooks, portfolio, serialize, signals
from kb.insights.schemas import (
    CampaignSignalsOut,
    LessonQuery,
    LessonSearchOut,
    PlaybookIn,
    PlaybookList,
    PlaybookOut,
    PlaybookUpdate,
    PortfolioOut,
    PortfolioQuery,
    ThemeQuery,
    resolve_period,
    validate_playbook,
)
from kb.validation import validate_as


@bp.get("/portfolio")
@requires(Access.READ)
@operation(query=PortfolioQuery, response=PortfolioOut, returns="活动组合", errors=(422,))
def get_portfolio() -> Response:
    """活动组合 (Portfolio: timeline, audience crowding, results per goal)."""
    query = validate_as(PortfolioQuery, request.args.to_dict())
    date_from, date_to = resolve_period(query, date.today())
    result = portfolio.build_portfolio(
        date_from, date_to, goal_type=query.goal_type, business_line=query.business_line
    )
    return respond(serialize.portfolio_out(result))


@bp.get("/lessons")
@requires(Access.READ)
@operation(query=LessonQuery, response=LessonSearchOut, returns="经验条目", errors=(422,))
def search_lessons() -> Response:
    """搜索经验教训 (Search lessons, recommendations and tested hypotheses)."""
    query = validate_as(LessonQuery, request.args.to_dict())
    q = query.q or ""
    results = lessons.search_lessons(
        q, theme=query.theme, kind=query.kind, limit=query.limit, offset=query.offset
    )
    found = playbooks.search_playbooks(q, query.theme)
    return respond(serialize.lesson_search_out(q, query.theme, query.kind, results, found))


@bp.get("/playbooks")
@requires(Access.READ)
@operation(query=ThemeQuery, response=PlaybookList, returns="打法列表", errors=(422,))
def list_playbooks() -> Response:
    """列出打法 (List playbooks)."""
    query = validate_as(ThemeQuery, {"theme": request.args.get("theme", "")})
    items = playbooks.list_playbooks(query.theme)
    return respond(PlaybookList(items=[serialize.playbook_out(p) for p in items]))


@bp.post("/playbooks")
@requires(Access.EDIT)
@operation(
    body=PlaybookIn,
    response=PlaybookOut,
    status=201,
    returns="已创建",
    headers=("Location",),
    errors=(400, 413, 415, 422),
)
def create_playbook() -> Response:
    """创建打法 (Create a playbook)."""
    playbook = playbooks.create_playbook(validate_playbook(json_body()))
    location = url_for("api.get_playbook", playbook_id=playbook.id)
    return respond(serialize.playbook_out(playbook), 201, {"Location": location})


@bp.get("/playbooks/<int:playbook_id>")
@requires(Access.READ)
@operation(response=PlaybookOut, returns="打法", errors=(404,))
def get_playbook(playbook_id: int) -> Response:
    """读取打法 (Get a playbook)."""
    return respond(serialize.playbook_out(playbooks.get_playbook(playbook_id)))


@bp.put("/playbooks/<int:playbook_id>")
@requires(Access.EDIT)
@operation(
    body=PlaybookUpdate, response=PlaybookOut, returns="打法", errors=(400, 404, 409, 413, 415, 422)
)
def update_playbook(playbook_id: int) -> Response:
    """替换打法 (Replace a playbook; a stale version gets 409)."""
    data = validate_playbook(json_body(), update=True)
    expected = getattr(data, "version", None)
    playbook = playbooks.update_playbook(playbook_id, data, expected_version=expected)
    return respond(serialize.playbook_out(playbook))


@bp.delete("/playbooks/<int:playbook_id>")
@requires(Access.EDIT)
@operation(status=204, returns="已删除", errors=(404,))
def delete_playbook(playbook_id: int) -> tuple[str, int]:
    """删除打法 (Delete a playbook)."""
    playbooks.delete_playbook(playbook_id)
    return "", 204


@bp.get("/campaigns/<int:campaign_id>/signals")
@requires(Access.READ)
@operation(response=CampaignSignalsOut, returns="预警", errors=(404,))
def campaign_signals(campaign_id: int) -> Response:
    """活动的数据预警 (Warning signals of a campaign)."""
    campaign = services.get_campaign(campaign_id)
    thresholds = signals.current_thresholds()
    found = signals.campaign_signals(campaign, thresholds)
    return respond(serialize.campaign_signals_out(campaign.id, found, thresholds))
