"""Campaign history pages: the versions of a campaign, what each change did, and restoring one."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from kb import audit
from kb.access import Access, requires
from kb.campaigns import history, services
from kb.database import form_version
from kb.models import Campaign
from kb.validation import InvalidInputError
from kb.web.rendering import conflict_message

bp = Blueprint("history", __name__)


@bp.get("/campaigns/<int:campaign_id>/history")
@requires(Access.READ)
def campaign_history(campaign_id: int) -> ResponseReturnValue:
    campaign = _campaign_or_404(campaign_id)
    rows = [
        {"version": version, "changed": changed}
        for version, changed in history.with_changed_fields(campaign_id)
    ]
    return render_template(
        "campaigns/history.html",
        campaign=campaign,
        rows=rows,
        action_labels=history.ACTION_LABELS,
        describe_actor=audit.describe_actor,
    )


@bp.get("/campaigns/<int:campaign_id>/history/<int:version>")
@requires(Access.READ)
def campaign_version(campaign_id: int, version: int) -> ResponseReturnValue:
    campaign = _campaign_or_404(campaign_id)
    found = history.version_diff(campaign_id, version)
    if found is None:
        abort(404)
    shown, previous, changes = found
    return render_template(
        "campaigns/version.html",
        campaign=campaign,
        shown=shown,
        previous=previous,
        changes=changes,
        action_labels=history.ACTION_LABELS,
        describe_actor=audit.describe_actor,
    )


@bp.post("/campaigns/<int:campaign_id>/history/<int:version>/restore")
@requires(Access.EDIT)
def campaign_version_restore(campaign_id: int, version: int) -> ResponseReturnValue:
    try:
        expected = form_version(request.form.get("expected_version"))
        services.revert_campaign(campaign_id, version, expected_version=expected)
    except (services.NotFoundError, services.VersionNotFoundError):
        abort(404)
    except services.VersionConflictError as exc:
        flash(conflict_message("活动", exc.current_version), "error")
        return redirect(
            url_for("history.campaign_version", campaign_id=campaign_id, version=version)
        )
    except InvalidInputError as exc:
        # The old record no longer passes today's rules (e.g. its external_id is taken now).
        problems = "；".join(f"{field}：{message}" for field, message in exc.fields.items())
        flash(f"无法恢复第 {version} 版：{problems}", "error")
        return redirect(
            url_for("history.campaign_version", campaign_id=campaign_id, version=version)
        )
    flash(f"已恢复到第 {version} 版（作为新版本保存，之前的版本仍在历史中）。", "success")
    return redirect(url_for("pages.campaign_detail", campaign_id=campaign_id))


def _campaign_or_404(campaign_id: int) -> Campaign:
    # A trashed campaign's history stays readable to editors and admins (it is how one decides
    # to restore it), not to viewers, who no longer see the campaign at all.
    campaign = services.get_campaign(campaign_id, include_trashed=True)
    if not history.may_read(campaign):
        raise services.NotFoundError(campaign_id)
    return campaign
