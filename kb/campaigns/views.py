"""Web pages: the campaign list, a campaign, the create/edit form and the trash."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

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
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from kb import vocab as labels
from kb.access import Access, requires
from kb.campaigns import forms, services
from kb.campaigns import trash as trash_log
from kb.campaigns.conflicts import EditConflict, edit_conflict
from kb.campaigns.key_metric import KeyMetric, key_metric
from kb.campaigns.queries import CampaignFilter, industries, list_campaigns
from kb.campaigns.schemas import validate_campaign, validate_list_query
from kb.campaigns.serialize import metric_to_dict
from kb.database import form_version
from kb.drafts import analysis as drafting
from kb.insights import signals
from kb.models import Campaign
from kb.searching import conditions as search_conditions
from kb.searching import explain as search_explain
from kb.searching import page as search_page_state
from kb.searching import service as search_service
from kb.validation import InvalidInputError
from kb.web import home

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
def search_page() -> ResponseReturnValue:
    page = search_page_state.build(request.args, _search_url)
    if page.redirect_to is not None:
        # The metric form's boxes become one condition in the search's URL.
        return redirect(page.redirect_to)
    query = page.query
    response = search_service.search(query) if (query.q or page.has_filters) else None
    outcome_label = ""
    if response is not None and response.outcome is not None:
        outcome_label = search_explain.describe_outcome(response.outcome)
    signal_names = signals.signal_labels()
    return render_template(
        "search.html",
        page=page,
        query=query,
        args=page.params,
        errors=page.errors,
        response=response,
        has_filters=page.has_filters,
        active_filters=search_page_state.chips(
            page, _search_url, signal_names, response.recognised if response else ()
        ),
        facets=search_page_state.facets(page, response.facets, _search_url) if response else [],
        pager=search_page_state.pager(page, response.total, _search_url) if response else [],
        next_url=search_page_state.page_url(page, query.offset // query.limit + 2, _search_url),
        previous_url=search_page_state.page_url(page, query.offset // query.limit, _search_url),
        metric_choices=search_conditions.catalog_choices(),
        METRIC_FIELDS=labels.METRIC_FIELDS,
        COMPARISONS=labels.COMPARISONS,
        link=lambda **changes: search_page_state.link(page, _search_url, **changes),
        outcome_label=outcome_label,
        industries=sorted(set(labels.INDUSTRIES) | set(industries())),
    )


def _search_url(params: MultiDict[str, str]) -> str:
    query = urlencode(list(params.items(multi=True)))
    return url_for("pages.search_page") + (f"?{query}" if query else "")


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
    # The similar cases, collisions and forecast take seconds: the page answers without them and
    # its script loads them from campaign_similar (a link does it without script).
    return render_template(
        "campaigns/detail.html",
        campaign=campaign,
        metrics=metrics,
        key=key_metric(campaign),
        signals=signals.campaign_signals(campaign),
    )


@bp.get("/campaigns/<int:campaign_id>/similar")
@requires(Access.READ)
def campaign_similar(campaign_id: int) -> str:
    """相似案例与冲突 of a campaign: the fragment its page loads, or (without script) a page."""
    campaign = _get_or_404(campaign_id)
    analysis = drafting.analyze_draft(
        drafting.draft_from_campaign(campaign, limit=5), exclude_id=campaign.id
    )
    fragment = request.args.get("fragment") == "1"
    return render_template(
        "drafts/_analysis.html" if fragment else "campaigns/similar.html",
        campaign=campaign,
        analysis=analysis,
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
    if forms.map_metric(state, request.form.get("map_metric", "")):
        # "归为 GMV" beside an unknown metric name: the form again with the catalog's name.
        return _render_form(state, {}, campaign=campaign)
    try:
        validated = validate_campaign(data)
        if campaign is None:
            saved = services.create_campaign(validated)
            flash("活动已创建。", "success")
        else:
            # "已核对，保存我的版本" names the version the editor has seen the changes of.
            confirmed = request.form.get("overwrite", "")
            expected = form_version(confirmed if confirmed.strip() else state["version"])
            saved = services.update_campaign(campaign.id, validated, expected_version=expected)
            flash("修改已保存。", "success")
    except InvalidInputError as exc:
        return _render_form(state, exc.fields, campaign=campaign, status=422)
    except services.VersionConflictError:
        # Keep what the user typed and show what the other editor changed; a plain 保存 again
        # meets the same conflict: only the explicit overwrite button saves over it.
        if campaign is None:  # a new campaign has no version to conflict with
            raise
        current = services.get_campaign(campaign.id)
        started = state["version"]
        conflict = edit_conflict(current, int(started) if started.isdigit() else None)
        return _render_form(state, {}, campaign=current, status=409, conflict=conflict)
    except services.NotFoundError:
        abort(404)
    return redirect(url_for("pages.campaign_detail", campaign_id=saved.id))


def _render_form(
    state: dict[str, Any],
    errors: dict[str, str],
    *,
    campaign: Campaign | None,
    status: int = 200,
    conflict: EditConflict | None = None,
) -> ResponseReturnValue:
    body = render_template(
        "campaigns/form.html",
        state=state,
        errors=errors,
        campaign=campaign,
        conflict=conflict,
        industries=sorted(set(labels.INDUSTRIES) | set(industries())),
        metric_names=forms.metric_name_suggestions(),
        unclassified=forms.unclassified_metrics(state),
    )
    return body if status == 200 else (body, status)
