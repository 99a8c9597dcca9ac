"""Web pages: the campaign list, a campaign, the create/edit form and the trash."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from kb import vocab as labels
from kb.access import Access, requires
from kb.campaigns import forms, services
from kb.campaigns import trash as trash_log
from kb.campaigns.key_metric import KeyMetric, key_metric
from kb.campaigns.queries import CampaignFilter, industries, list_campaigns
from kb.campaigns.schemas import validate_campaign, validate_list_query
from kb.campaigns.serialize import metric_to_dict
from kb.drafts import analysis as drafting
from kb.insights import signals
from kb.models import Campaign
from kb.searching import explain as search_explain
from kb.searching import service as search_service
from kb.searching.schemas import search_params, validate_search_query
from kb.validation import InvalidInputError
from kb.web import home
from kb.web.rendering import conflict_message

bp = Blueprint("pages", __name__)


@bp.app_template_global("key_metric")
def _key_metric(campaign: Campaign) -> KeyMetric | None:
    """Return a campaign's key metric for the list, search and detail pages."""
    return key_metric(campaign)


@bp.get("/")
@requires(Access.READ)
def index() -> str:
    """首页：搜索框、本周上线、新复盘、需要关注的预警、待补复盘、我的草案."""
    return home.home_page()


@bp.get("/campaigns")
@requires(Access.READ)
def campaign_list() -> str:
    args = request.args.to_dict()
    try:
        query = validate_list_query(args)
        filter_errors: dict[str, str] = {}
    except InvalidInputError as exc:
        # Show the page without the bad filters, and say which ones were ignored and why.
        filter_errors = exc.fields
        query = validate_list_query({k: v for k, v in args.items() if k not in exc.fields})
    page = list_campaigns(
        CampaignFilter(
            industry=query.industry,
            goal_type=query.goal_type,
            status=query.status,
            date_from=query.date_from,
            date_to=query.date_to,
        ),
        page=query.page,
        per_page=current_app.config["PER_PAGE"],
    )
    return render_template(
        "campaigns/list.html",
        page=page,
        args=args,
        filter_errors=filter_errors,
        industries=sorted(set(labels.INDUSTRIES) | set(industries())),
    )


@bp.get("/search")
@requires(Access.READ)
def search_page() -> str:
    args = request.args.to_dict()
    params = search_params(request.args)
    errors: dict[str, str] = {}
    try:
        query = validate_search_query(params)
    except InvalidInputError as exc:
        # Search without the bad parameters, and say which ones were ignored and why.
        errors = exc.fields
        bad = {key.split(".")[0] for key in exc.fields}
        query = validate_search_query({k: v for k, v in params.items() if k not in bad})
    has_filters = any(
        value
        for key, value in query.model_dump().items()
        if key not in ("q", "mode", "limit", "offset", "expand")
    )
    response = search_service.search(query) if (query.q or has_filters) else None
    outcome_label = ""
    if response is not None and response.outcome is not None:
        outcome_label = search_explain.describe_outcome(response.outcome)
    return render_template(
        "search.html",
        query=query,
        args=args,
        errors=errors,
        response=response,
        has_filters=has_filters,
        outcome_label=outcome_label,
        industries=sorted(set(labels.INDUSTRIES) | set(industries())),
    )


@bp.get("/campaigns/<int:campaign_id>")
@requires(Access.READ)
def campaign_detail(campaign_id: int) -> ResponseReturnValue:
    try:
        campaign = services.get_campaign(campaign_id, include_trashed=True)
    except services.NotFoundError:
        abort(404)
    if campaign.deleted_at is not None:
        # A link to a trashed campaign says so (410 Gone), and who can restore it gets the button.
        trashing = trash_log.trashings([campaign.id]).get(campaign.id)
        return render_template("campaigns/trashed.html", campaign=campaign, trashing=trashing), 410
    metrics = [metric_to_dict(m) for m in campaign.metrics]
    analysis = drafting.analyze_draft(
        drafting.draft_from_campaign(campaign, limit=5), exclude_id=campaign.id
    )
    return render_template(
        "campaigns/detail.html",
        campaign=campaign,
        metrics=metrics,
        key=key_metric(campaign),
        analysis=analysis,
        signals=signals.campaign_signals(campaign),
        # Collisions and a forecast matter before and during a campaign, not after it.
        show_outlook=campaign.status in labels.ACTIVE_STATUSES,
    )


@bp.route("/campaigns/new", methods=["GET", "POST"])
@requires(Access.EDIT)
def campaign_new() -> ResponseReturnValue:
    if request.method == "GET":
        return _render_form(forms.empty_state(), {}, campaign=None)
    return _save_form(campaign=None)


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@requires(Access.EDIT)
def campaign_edit(campaign_id: int) -> ResponseReturnValue:
    campaign = _get_or_404(campaign_id)
    if request.method == "GET":
        return _render_form(forms.state_from_campaign(campaign), {}, campaign=campaign)
    return _save_form(campaign=campaign)


@bp.post("/campaigns/<int:campaign_id>/delete")
@requires(Access.EDIT)
def campaign_delete(campaign_id: int) -> Response:
    try:
        campaign = services.trash_campaign(campaign_id)
    except services.NotFoundError:
        abort(404)
    flash(f"“{campaign.title}”已移入回收站，可在回收站恢复。", "success")
    return redirect(url_for("pages.campaign_list"))


@bp.get("/trash")
@requires(Access.EDIT)
def trash() -> str:
    page_number = request.args.get("page", "1")
    page = list_campaigns(
        CampaignFilter(trashed=True),
        page=int(page_number) if page_number.isdigit() and int(page_number) > 0 else 1,
        per_page=current_app.config["PER_PAGE"],
    )
    return render_template(
        "campaigns/trash.html",
        page=page,
        trashings=trash_log.trashings(c.id for c in page.items),
    )


@bp.post("/trash/<int:campaign_id>/restore")
@requires(Access.EDIT)
def campaign_restore(campaign_id: int) -> Response:
    try:
        campaign = services.restore_campaign(campaign_id)
    except services.NotFoundError:
        abort(404)
    flash(f"“{campaign.title}”已恢复。", "success")
    return redirect(url_for("pages.campaign_detail", campaign_id=campaign.id))


@bp.post("/trash/<int:campaign_id>/purge")
@requires(Access.ADMIN)
def campaign_purge(campaign_id: int) -> Response:
    try:
        title = services.purge_campaign(campaign_id)
    except services.NotFoundError:
        abort(404)
    flash(f"“{title}”已彻底删除。", "success")
    return redirect(url_for("pages.trash"))


def _get_or_404(campaign_id: int) -> Campaign:
    try:
        return services.get_campaign(campaign_id)
    except services.NotFoundError:
        abort(404)


def _save_form(campaign: Campaign | None) -> ResponseReturnValue:
    state, data = forms.parse_form(request.form)
    add_row = request.form.get("add_row")
    if add_row:
        # The no-JavaScript way to get another row: show the form again, saving nothing.
        forms.add_blank_row(state, add_row)
        return _render_form(state, {}, campaign=campaign)
    try:
        validated = validate_campaign(data)
        if campaign is None:
            saved = services.create_campaign(validated)
            flash("活动已创建。", "success")
        else:
            version = state["version"]
            expected = int(version) if version.isdigit() else None
            saved = services.update_campaign(campaign.id, validated, expected_version=expected)
            flash("修改已保存。", "success")
    except InvalidInputError as exc:
        return _render_form(state, exc.fields, campaign=campaign, status=422)
    except services.VersionConflictError as exc:
        # Keep what the user typed; the next save deliberately overwrites the newer version.
        state["version"] = str(exc.current_version)
        message = conflict_message("活动", exc.current_version)
        return _render_form(state, {}, campaign=campaign, status=409, conflict=message)
    except services.NotFoundError:
        abort(404)
    return redirect(url_for("pages.campaign_detail", campaign_id=saved.id))


def _render_form(
    state: dict[str, Any],
    errors: dict[str, str],
    *,
    campaign: Campaign | None,
    status: int = 200,
    conflict: str | None = None,
) -> ResponseReturnValue:
    body = render_template(
        "campaigns/form.html",
        state=state,
        errors=errors,
        campaign=campaign,
        conflict=conflict,
        industries=labels.INDUSTRIES,
    )
    return body if status == 200 else (body, status)
