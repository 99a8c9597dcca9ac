"""The drafting page: a new campaign's similar past cases, collisions and forecast."""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from kb import vocab as labels
from kb.access import Access, allowed, requires
from kb.campaigns import forms, services
from kb.campaigns.queries import industries
from kb.campaigns.schemas import DraftIn, validate_campaign, validate_draft
from kb.database import form_id
from kb.drafts import analysis as drafting
from kb.extensions import db
from kb.models import Campaign
from kb.validation import InvalidInputError

bp = Blueprint("drafts", __name__)

# The parts of the campaign form a draft uses: no outcomes, no retrospective yet.
_DRAFT_FIELDS = set(DraftIn.model_fields) - {"limit", "text", "draft_key", "campaign_id"}
# A draft's metric rows: what it starts from and aims for; 实际 comes after the campaign.
_DRAFT_METRIC_FIELDS = ("name", "unit", "baseline", "target")


@bp.route("/drafts/new", methods=["GET", "POST"])
@requires(Access.READ)
def draft_page() -> ResponseReturnValue:
    if request.method == "GET":
        state = forms.empty_state()
        state["status"] = "planned"
        state["draft_key"] = _new_key()
        return _render(state, {}, None)

    state, data = forms.parse_form(request.form)
    state["draft_key"] = _valid_key(request.form.get("draft_key", ""))
    narrow = request.form.get("narrow_business_line", "").strip()
    if narrow:
        # "Only check within 悦颜美妆": the collision section's offer to narrow, one click.
        state["business_line"] = data["business_line"] = narrow[:100]
    action = request.form.get("action", "analyze")
    if request.form.get("add_row"):
        forms.add_blank_row(state, request.form["add_row"])
        return _render(state, {}, None)
    if forms.map_metric(state, request.form.get("map_metric", "")):
        # "归为 GMV" beside a metric name the catalog does not know: the draft again, renamed.
        return _render(state, {}, None)
    hide = request.form.get("not_useful", "")
    # Analysing a draft is reading; saving it and remembering feedback are an editor's writes.
    writes = action == "save" or hide or request.form.get("reset_hidden")
    if writes and not allowed(Access.EDIT):
        abort(403)
    if hide:
        # The id comes from a button of the page; one naming no campaign is refused, never a 500.
        campaign_id = form_id(hide)
        if campaign_id is None:
            raise services.NotFoundError(hide)
        drafting.mark_not_useful(
            state["draft_key"], services.get_campaign(campaign_id, include_trashed=True).id
        )
    if request.form.get("reset_hidden"):
        drafting.forget_feedback(state["draft_key"])
    if action == "save":
        return _save(state, data)
    try:
        draft = validate_draft({**_draft_data(data), "draft_key": state["draft_key"]})
    except InvalidInputError as exc:
        return _render(state, exc.fields, None, status=422)
    return _render(state, {}, drafting.analyze_draft(draft))


@bp.post("/campaigns/<int:campaign_id>/similar/<int:other_id>/hide")
@requires(Access.EDIT)
def hide_similar(campaign_id: int, other_id: int) -> Response:
    try:
        services.get_campaign(campaign_id)
    except services.NotFoundError:
        abort(404)
    drafting.mark_not_useful(f"campaign:{campaign_id}", other_id)
    flash("已标记为无用，此活动不再出现在相似案例中。", "success")
    return redirect(url_for("pages.campaign_detail", campaign_id=campaign_id) + "#similar")


def _save(state: dict[str, Any], data: dict[str, Any]) -> ResponseReturnValue:
    """Store the draft as a planned campaign."""
    record = {key: value for key, value in data.items() if key not in ("hypotheses",)}
    record["status"] = "planned"
    # The campaign keeps the draft's key, so re-analysing this draft never collides with it.
    saved = db.session.scalar(sa.select(Campaign).where(Campaign.external_id == state["draft_key"]))
    if saved is not None and saved.deleted_at is None:
        flash(f"这份草案已保存为活动 #{saved.id}，请在活动页修改。", "success")
        return redirect(url_for("pages.campaign_detail", campaign_id=saved.id))
    record["external_id"] = state["draft_key"] if saved is None else _new_key()
    try:
        campaign = services.create_campaign(validate_campaign(record))
    except InvalidInputError as exc:
        return _render(state, exc.fields, None, status=422)
    flash("草案已保存为“计划中”的活动。", "success")
    return redirect(url_for("pages.campaign_detail", campaign_id=campaign.id))


def _draft_data(data: dict[str, Any]) -> dict[str, Any]:
    draft = {key: value for key, value in data.items() if key in _DRAFT_FIELDS}
    draft["metrics"] = [
        {key: row[key] for key in _DRAFT_METRIC_FIELDS if key in row}
        for row in data.get("metrics", [])
    ]
    return draft


def _render(
    state: dict[str, Any],
    errors: dict[str, str],
    analysis: drafting.DraftAnalysis | None,
    *,
    status: int = 200,
) -> ResponseReturnValue:
    body = render_template(
        "drafts/new.html",
        state=state,
        errors=errors,
        analysis=analysis,
        industries=sorted(set(labels.INDUSTRIES) | set(industries())),
        metric_names=forms.metric_name_suggestions(),
        unclassified=forms.unclassified_metrics(state),
        draft_mode=True,
    )
    return body if status == 200 else (body, status)


def _new_key() -> str:
    return "draft-" + secrets.token_urlsafe(12).replace("_", "-")


def _valid_key(key: str) -> str:
    """Keep the draft's key if it is one of ours in shape, else start a new one."""
    # Only our own shape: a saved draft is found again by its key (the campaign's external_id),
    # so a posted key must not name an imported campaign's external_id.
    ours = key.startswith("draft-") and key.removeprefix("draft-").replace("-", "").isalnum()
    return key if ours and len(key) <= 100 else _new_key()
