"""The campaign endpoints of the JSON API: campaigns, their versions, and the trash."""

from __future__ import annotations

from typing import Annotated

from flask import Response, current_app, request, url_for
from pydantic import BaseModel, ConfigDict, Field

from kb.access import Access, requires
from kb.api import bp
from kb.api.operation import operation, respond
from kb.campaigns import history, queries, services
from kb.campaigns.schemas import (
    CampaignIn,
    CampaignUpdate,
    ListQuery,
    RestoreVersionIn,
    validate_campaign,
    validate_list_query,
)
from kb.campaigns.serialize import CampaignList, CampaignOut, campaign_out
from kb.errors import json_body
from kb.validation import validate_as


class PageQuery(BaseModel):
    """A page of a list that takes no filters."""

    model_config = ConfigDict(extra="ignore")

    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    per_page: Annotated[int | None, Field(ge=1)] = None


def _per_page(query: ListQuery) -> int:
    config = current_app.config
    return min(query.per_page or int(config["PER_PAGE"]), int(config["MAX_PER_PAGE"]))


def _page_out(result: queries.Page) -> CampaignList:
    return CampaignList(
        items=[campaign_out(c) for c in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
        pages=result.pages,
    )


@bp.get("/campaigns")
@requires(Access.READ)
@operation(query=ListQuery, response=CampaignList, returns="一页活动", errors=(422,))
def list_campaigns() -> Response:
    """列出活动 (List campaigns)."""
    query = validate_list_query(request.args.to_dict())
    filters = queries.CampaignFilter(
        industry=query.industry,
        goal_type=query.goal_type,
        status=query.status,
        date_from=query.date_from,
        date_to=query.date_to,
    )
    result = queries.list_campaigns(filters, page=query.page, per_page=_per_page(query))
    return respond(_page_out(result))


@bp.post("/campaigns")
@requires(Access.EDIT)
@operation(
    body=CampaignIn,
    response=CampaignOut,
    status=201,
    returns="已创建",
    headers=("Location",),
    errors=(400, 413, 415, 422),
)
def create_campaign() -> Response:
    """创建活动 (Create a campaign)."""
    campaign = services.create_campaign(validate_campaign(json_body()))
    location = url_for("api.get_campaign", campaign_id=campaign.id)
    return respond(campaign_out(campaign), 201, {"Location": location})


@bp.get("/campaigns/<int:campaign_id>")
@requires(Access.READ)
@operation(response=CampaignOut, returns="活动", errors=(404,))
def get_campaign(campaign_id: int) -> Response:
    """读取活动 (Get a campaign)."""
    return respond(campaign_out(services.get_campaign(campaign_id)))


@bp.put("/campaigns/<int:campaign_id>")
@requires(Access.EDIT)
@operation(
    body=CampaignUpdate, response=CampaignOut, returns="活动", errors=(400, 404, 409, 413, 415, 422)
)
def update_campaign(campaign_id: int) -> Response:
    """替换活动 (Replace a campaign; a stale version gets 409)."""
    data = validate_campaign(json_body(), update=True)
    expected = getattr(data, "version", None)
    campaign = services.update_campaign(campaign_id, data, expected_version=expected)
    return respond(campaign_out(campaign))


@bp.delete("/campaigns/<int:campaign_id>")
@requires(Access.EDIT)
@operation(status=204, returns="已移入回收站", errors=(404,))
def delete_campaign(campaign_id: int) -> tuple[str, int]:
    """移入回收站 (Move a campaign to the trash)."""
    services.trash_campaign(campaign_id)
    return "", 204


@bp.get("/campaigns/<int:campaign_id>/versions")
@requires(Access.READ)
@operation(response=history.VersionList, returns="版本列表", errors=(404,))
def list_campaign_versions(campaign_id: int) -> Response:
    """活动的历史版本 (A campaign's versions, newest first).

    回收站中的活动的历史仅编辑者和管理员可查看（查看者 404）。
    """
    _history_readable(campaign_id)
    items = [
        history.version_out(version, changed)
        for version, changed in history.with_changed_fields(campaign_id)
    ]
    return respond(history.VersionList(items=items))


@bp.get("/campaigns/<int:campaign_id>/versions/<int:version>")
@requires(Access.READ)
@operation(response=history.VersionDetailOut, returns="版本", errors=(404,))
def get_campaign_version(campaign_id: int, version: int) -> Response:
    """某一版本及其与上一版的差异 (One version and its diff).

    回收站中的活动仅编辑者和管理员可查看（查看者 404）；活动或版本不存在时 404。
    """
    _history_readable(campaign_id)
    found = history.version_diff(campaign_id, version)
    if found is None:
        raise services.VersionNotFoundError(campaign_id, version)
    shown, _, changes = found
    return respond(history.version_detail_out(shown, changes))


def _history_readable(campaign_id: int) -> None:
    """Raise 404 unless the caller may read this campaign's history (trashed: editors only)."""
    if not history.may_read(services.get_campaign(campaign_id, include_trashed=True)):
        raise services.NotFoundError(campaign_id)


@bp.post("/campaigns/<int:campaign_id>/versions/<int:version>/restore")
@requires(Access.EDIT)
@operation(
    body=RestoreVersionIn,
    body_required=False,
    response=CampaignOut,
    returns="活动",
    errors=(400, 404, 409, 413, 415, 422),
)
def restore_campaign_version(campaign_id: int, version: int) -> Response:
    """恢复到某一版本 (Make a version current again, as a new version).

    可选请求体 {"version": 当前版本号}：活动已被改过时 409（含 current_version）。回收站中的活动须先恢复（否则 404）；旧版本已不符合现行校验时 422。
    """
    expected = validate_as(RestoreVersionIn, json_body() if request.content_length else {}).version
    campaign = services.revert_campaign(campaign_id, version, expected_version=expected)
    return respond(campaign_out(campaign))


@bp.get("/trash")
@requires(Access.EDIT)
@operation(query=PageQuery, response=CampaignList, returns="一页已删除的活动", errors=(422,))
def list_trash() -> Response:
    """回收站 (Campaigns in the trash, one page)."""
    query = validate_list_query(request.args.to_dict())
    result = queries.list_campaigns(
        queries.CampaignFilter(trashed=True), page=query.page, per_page=_per_page(query)
    )
    return respond(_page_out(result))


@bp.post("/trash/<int:campaign_id>/restore")
@requires(Access.EDIT)
@operation(response=CampaignOut, returns="活动", errors=(404,))
def restore_from_trash(campaign_id: int) -> Response:
    """从回收站恢复 (Restore a campaign from the trash).

    活动不在回收站中时 404。
    """
    return respond(campaign_out(services.restore_campaign(campaign_id)))


@bp.delete("/trash/<int:campaign_id>")
@requires(Access.ADMIN)
@operation(status=204, returns="已彻底删除", errors=(404,))
def purge_from_trash(campaign_id: int) -> tuple[str, int]:
    """彻底删除 (Delete a trashed campaign for good, with its history).

    只能删除回收站中的活动，否则 404。
    """
    services.purge_campaign(campaign_id)
    return "", 204
