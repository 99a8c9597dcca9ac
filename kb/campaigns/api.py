"""The campaign endpoints of the JSON API: campaigns, their versions, and the trash."""

from __future__ import annotations

from typing import Annotated

from flask import Response, current_app, request, url_for
from pydantic import BaseModel, ConfigDict, Field

from kb import outbox
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
from kb.models import Campaign
from kb.validation import validate_as


class PageQuery(BaseModel):
    """A page of a list that takes no filters."""

    model_config = ConfigDict(extra="ignore")

    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    per_page: Annotated[int | None, Field(ge=1)] = None


class CampaignWriteOut(CampaignOut):
    """A campaign as just written, with the change-feed entry to wait for before searching it."""

    index_seq: int = Field(
        description="这次写入在变更序列中的序号：GET /api/v1/index/status 的 keyword_seq、"
        "vector_seq 达到它时，关键词、语义搜索即可找到（也在响应头 Index-Seq 中）"
    )
    indexed: bool = Field(description="应答时本主机的关键词与语义索引是否已包含这次写入")


def _written(
    campaign: Campaign, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    seq = outbox.campaign_seq(campaign.id)
    body = CampaignWriteOut.model_validate(
        {**campaign_out(campaign).model_dump(), "index_seq": seq, "indexed": outbox.is_indexed(seq)}
    )
    return respond(body, status, {**(headers or {}), **outbox.write_headers(seq)})


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
    response=CampaignWriteOut,
    status=201,
    returns="已创建",
    headers=("Location", "Index-Seq"),
    errors=(400, 413, 415, 422),
)
def create_campaign() -> Response:
    """创建活动 (Create a campaign)."""
    campaign = services.create_campaign(validate_campaign(json_body()))
    location = url_for("api.get_campaign", campaign_id=campaign.id)
    return _written(campaign, 201, {"Location": location})


@bp.get("/campaigns/<int:campaign_id>")
@requires(Access.READ)
@operation(response=CampaignOut, returns="活动", errors=(404,))
def get_campaign(campaign_id: int) -> Response:
    """读取活动 (Get a campaign)."""
    return respond(campaign_out(services.get_campaign(campaign_id)))


@bp.put("/campaigns/<int:campaign_id>")
@requires(Access.EDIT)
@operation(
    body=CampaignUpdate,
    response=CampaignWriteOut,
    returns="活动",
    headers=("Index-Seq",),
    errors=(400, 404, 409, 413, 415, 422),
)
def update_campaign(campaign_id: int) -> Response:
    """替换活动 (Replace a campaign; a stale version gets 409)."""
    data = validate_campaign(json_body(), update=True)
    expected = getattr(data, "version", None)
    campaign = services.update_campaign(campaign_id, data, expected_version=expected)
    return _written(campaign)


@bp.delete("/campaigns/<int:campaign_id>")
@requires(Access.EDIT)
@operation(status=204, returns="已移入回收站", headers=("Index-Seq",), errors=(404,))
def delete_campaign(campaign_id: int) -> tuple[str, int, dict[str, str]]:
    """移入回收站 (Move a campaign to the trash)."""
    services.trash_campaign(campaign_id)
    return "", 204, outbox.write_headers(outbox.campaign_seq(campaign_id))


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
    response=CampaignWriteOut,
    returns="活动",
    headers=("Index-Seq",),
    errors=(400, 404, 409, 413, 415, 422),
)
def restore_campaign_version(campaign_id: int, version: int) -> Response:
    """恢复到某一版本 (Make a version current again, as a new version).

    可选请求体 {"version": 当前版本号}：活动已被改过时 409（含 current_version）。回收站中的活动须先恢复（否则 404）；旧版本已不符合现行校验时 422。
    """
    expected = validate_as(RestoreVersionIn, json_body() if request.content_length else {}).version
    campaign = services.revert_campaign(campaign_id, version, expected_version=expected)
    return _written(campaign)


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
@operation(response=CampaignWriteOut, returns="活动", headers=("Index-Seq",), errors=(404,))
def restore_from_trash(campaign_id: int) -> Response:
    """从回收站恢复 (Restore a campaign from the trash).

    活动不在回收站中时 404。
    """
    return _written(services.restore_campaign(campaign_id))


@bp.delete("/trash/<int:campaign_id>")
@requires(Access.ADMIN)
@operation(status=204, returns="已彻底删除", errors=(404,))
def purge_from_trash(campaign_id: int) -> tuple[str, int]:
    """彻底删除 (Delete a trashed campaign for good, with its history).

    只能删除回收站中的活动，否则 404。
    """
    services.purge_campaign(campaign_id)
    return "", 204
