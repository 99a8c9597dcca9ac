"""The JSON API under /api/v1: campaigns and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from kb.access import Access, requires
from kb.api import openapi
from kb.campaigns import history, services
from kb.campaigns.queries import CampaignFilter, Page, list_campaigns
from kb.campaigns.schemas import (
    LimitQuery,
    RestoreVersionIn,
    validate_campaign,
    validate_draft,
    validate_feedback,
    validate_list_query,
)
from kb.campaigns.serialize import campaign_to_dict
from kb.drafts import analysis as drafting
from kb.errors import ApiError, api_error_response, json_body
from kb.extensions import csrf
from kb.searching import service as search_service
from kb.searching.schemas import search_params, validate_search_query
from kb.validation import InvalidInputError, validate_as

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# API clients authenticate per request, not with a browser session: CSRF does not apply.
csrf.exempt(bp)


@bp.errorhandler(InvalidInputError)
def _invalid(exc: InvalidInputError) -> tuple[Response, int]:
    return api_error_response(ApiError(422, fields=exc.fields))


@bp.errorhandler(services.NotFoundError)
def _not_found(_exc: services.NotFoundError) -> tuple[Response, int]:
    return api_error_response(ApiError(404, "找不到该活动"))


@bp.errorhandler(services.VersionNotFoundError)
def _version_not_found(_exc: services.VersionNotFoundError) -> tuple[Response, int]:
    return api_error_response(ApiError(404, "该活动没有这个版本"))


@bp.errorhandler(services.VersionConflictError)
def _conflict(exc: services.VersionConflictError) -> tuple[Response, int]:
    return api_error_response(ApiError(409, current_version=exc.current_version))


def _list_params() -> tuple[CampaignFilter, int, int]:
    query = validate_list_query(request.args.to_dict())
    config = current_app.config
    per_page = min(query.per_page or config["PER_PAGE"], config["MAX_PER_PAGE"])
    filters = CampaignFilter(
        industry=query.industry,
        goal_type=query.goal_type,
        status=query.status,
        date_from=query.date_from,
        date_to=query.date_to,
    )
    return filters, query.page, per_page


@bp.get("/campaigns")
@requires(Access.READ)
def list_campaigns_endpoint() -> Response:
    filters, page, per_page = _list_params()
    return _page_json(list_campaigns(filters, page=page, per_page=per_page))


def _page_json(result: Page) -> Response:
    return jsonify(
        {
            "items": [campaign_to_dict(c) for c in result.items],
            "total": result.total,
            "page": result.page,
            "per_page": result.per_page,
            "pages": result.pages,
        }
    )


@bp.post("/campaigns")
@requires(Access.EDIT)
def create_campaign() -> tuple[Response, int, dict[str, str]]:
    data = validate_campaign(json_body())
    campaign = services.create_campaign(data)
    location = url_for("api.get_campaign", campaign_id=campaign.id)
    return jsonify(campaign_to_dict(campaign)), 201, {"Location": location}


@bp.get("/campaigns/<int:campaign_id>")
@requires(Access.READ)
def get_campaign(campaign_id: int) -> Response:
    return jsonify(campaign_to_dict(services.get_campaign(campaign_id)))


@bp.put("/campaigns/<int:campaign_id>")
@requires(Access.EDIT)
def update_campaign(campaign_id: int) -> Response:
    data = validate_campaign(json_body(), update=True)
    expected = getattr(data, "version", None)
    campaign = services.update_campaign(campaign_id, data, expected_version=expected)
    return jsonify(campaign_to_dict(campaign))


@bp.delete("/campaigns/<int:campaign_id>")
@requires(Access.EDIT)
def delete_campaign(campaign_id: int) -> tuple[str, int]:
    services.trash_campaign(campaign_id)
    return "", 204


@bp.get("/campaigns/<int:campaign_id>/versions")
@requires(Access.READ)
def list_versions(campaign_id: int) -> Response:
    services.get_campaign(campaign_id, include_trashed=True)
    items = [
        history.version_to_dict(version, changed)
        for version, changed in history.with_changed_fields(campaign_id)
    ]
    return jsonify({"items": items})


@bp.get("/campaigns/<int:campaign_id>/versions/<int:version>")
@requires(Access.READ)
def get_version(campaign_id: int, version: int) -> Response:
    services.get_campaign(campaign_id, include_trashed=True)
    found = history.version_diff(campaign_id, version)
    if found is None:
        raise services.VersionNotFoundError(campaign_id, version)
    shown, _, changes = found
    body = history.version_to_dict(shown, [c.label for c in changes])
    body["snapshot"] = shown.snapshot
    body["changes"] = [
        {
            "field": c.name,
            "label": c.label,
            "lines": [{"op": line.op, "text": line.text} for line in c.lines],
        }
        for c in changes
    ]
    return jsonify(body)


@bp.post("/campaigns/<int:campaign_id>/versions/<int:version>/restore")
@requires(Access.EDIT)
def restore_version(campaign_id: int, version: int) -> Response:
    expected = validate_as(RestoreVersionIn, json_body() if request.content_length else {}).version
    campaign = services.revert_campaign(campaign_id, version, expected_version=expected)
    return jsonify(campaign_to_dict(campaign))


@bp.get("/trash")
@requires(Access.EDIT)
def list_trash() -> Response:
    query = validate_list_query(request.args.to_dict())
    config = current_app.config
    per_page = min(query.per_page or config["PER_PAGE"], config["MAX_PER_PAGE"])
    return _page_json(
        list_campaigns(CampaignFilter(trashed=True), page=query.page, per_page=per_page)
    )


@bp.post("/trash/<int:campaign_id>/restore")
@requires(Access.EDIT)
def restore_from_trash(campaign_id: int) -> Response:
    return jsonify(campaign_to_dict(services.restore_campaign(campaign_id)))


@bp.delete("/trash/<int:campaign_id>")
@requires(Access.ADMIN)
def purge_from_trash(campaign_id: int) -> tuple[str, int]:
    services.purge_campaign(campaign_id)
    return "", 204


@bp.get("/search")
@requires(Access.READ)
def search_endpoint() -> Response:
    query = validate_search_query(search_params(request.args))
    return jsonify(search_service.response_to_dict(search_service.search(query)))


@bp.post("/similar")
@requires(Access.READ)
def similar_endpoint() -> Response:
    draft = validate_draft(json_body())
    return jsonify(drafting.analysis_to_dict(drafting.analyze_draft(draft)))


@bp.get("/campaigns/<int:campaign_id>/similar")
@requires(Access.READ)
def campaign_similar_endpoint(campaign_id: int) -> Response:
    campaign = services.get_campaign(campaign_id)
    limit = validate_as(LimitQuery, request.args.to_dict()).limit
    draft = drafting.draft_from_campaign(campaign, limit=limit)
    analysis = drafting.analyze_draft(draft, exclude_id=campaign.id)
    return jsonify(drafting.analysis_to_dict(analysis))


@bp.post("/similar/feedback")
@requires(Access.EDIT)
def similar_feedback_endpoint() -> tuple[str, int]:
    feedback = validate_feedback(json_body())
    services.get_campaign(feedback.campaign_id)
    drafting.mark_not_useful(feedback.draft_key, feedback.campaign_id, useful=feedback.useful)
    return "", 204


@bp.get("/openapi.json")
@requires(Access.PUBLIC)
def openapi_document() -> Response:
    return jsonify(openapi.build_document())
