"""Admin pages: users, API tokens, the audit log and the settings in force."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from kb import audit
from kb.access import Access, requires
from kb.accounts import services as accounts
from kb.config import SETTINGS
from kb.database import form_id
from kb.searching import backfill
from kb.validation import InvalidInputError

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Settings whose values are secrets or credentials: the settings page shows only that they are set.
_EMPTY_USER_FORM = {"username": "", "display_name": "", "role": "editor"}
SECRET_SETTINGS = ("SECRET_KEY", "DATABASE_URL", "RATELIMIT_STORAGE_URI")


@bp.get("/")
@requires(Access.ADMIN)
def home() -> ResponseReturnValue:
    return redirect(url_for("admin.users"))


@bp.route("/users", methods=["GET", "POST"])
@requires(Access.ADMIN)
def users() -> ResponseReturnValue:
    form = dict(_EMPTY_USER_FORM)
    errors: dict[str, str] = {}
    created: dict[str, str] | None = None
    if request.method == "POST":
        form = {key: request.form.get(key, "").strip() for key in form}
        try:
            user, password = accounts.create_user(
                form["username"], form["role"], display_name=form["display_name"]
            )
        except InvalidInputError as exc:
            errors = exc.fields
        else:
            # Shown in this response only: never stored in plain text, never put in a cookie.
            created = {"username": user.username, "password": password}
            form = dict(_EMPTY_USER_FORM)
    return _users_page(form, errors, created), (422 if errors else 200)


def _users_page(
    form: dict[str, str],
    errors: dict[str, str],
    created: dict[str, str] | None,
    *,
    reset: bool = False,
) -> str:
    return render_template(
        "admin/users.html",
        users=accounts.list_users(),
        form=form,
        errors=errors,
        created=created,
        reset=reset,
        roles=accounts.ROLES,
    )


@bp.post("/users/<int:user_id>")
@requires(Access.ADMIN)
def user_update(user_id: int) -> ResponseReturnValue:
    action = request.form.get("action", "")
    try:
        if action == "role":
            user = accounts.update_user(user_id, role=request.form.get("role", ""))
            flash(f"已将 {user.username} 的角色改为{accounts.ROLE_LABELS[user.role]}。", "success")
        elif action in ("activate", "deactivate"):
            user = accounts.update_user(user_id, active=action == "activate")
            flash(f"已{'启用' if user.active else '停用'} {user.username}。", "success")
        elif action == "reset_password":
            password = accounts.set_password(user_id)
            reset_user = accounts.get_user(user_id)
            created = {"username": reset_user.username if reset_user else "", "password": password}
            return _users_page(dict(_EMPTY_USER_FORM), {}, created, reset=True)
        else:
            flash("未知操作。", "error")
    except InvalidInputError as exc:
        flash("；".join(exc.fields.values()), "error")
    return redirect(url_for("admin.users"))


@bp.route("/tokens", methods=["GET", "POST"])
@requires(Access.ADMIN)
def tokens() -> ResponseReturnValue:
    form = {"name": "", "role": "viewer"}
    errors: dict[str, str] = {}
    issued: accounts.IssuedToken | None = None
    if request.method == "POST":
        form = {key: request.form.get(key, "").strip() for key in form}
        try:
            issued = accounts.create_token(form["name"], form["role"])
        except InvalidInputError as exc:
            errors = exc.fields
        else:
            form = {"name": "", "role": "viewer"}
    return render_template(
        "admin/tokens.html",
        tokens=accounts.list_tokens(),
        form=form,
        errors=errors,
        issued=issued,
        roles=accounts.ROLES,
    ), (422 if errors else 200)


@bp.post("/tokens/<int:token_id>/revoke")
@requires(Access.ADMIN)
def token_revoke(token_id: int) -> ResponseReturnValue:
    try:
        token = accounts.revoke_token(token_id)
    except InvalidInputError as exc:
        flash("；".join(exc.fields.values()), "error")
    else:
        flash(f"令牌“{token.name}”已吊销，使用它的请求将被拒绝。", "success")
    return redirect(url_for("admin.tokens"))


@bp.get("/audit")
@requires(Access.ADMIN)
def audit_log() -> ResponseReturnValue:
    page = form_id(request.args.get("page")) or 1
    action = request.args.get("action", "").strip()
    actor = request.args.get("actor", "").strip()
    events = audit.list_events(page=page, action=action, actor=actor)
    return render_template(
        "admin/audit.html",
        events=events,
        action=action,
        actor=actor,
        labels=audit.ACTION_LABELS,
        describe_actor=audit.describe_actor,
        describe_target=audit.describe_target,
        describe_detail=audit.describe_detail,
    )


@bp.get("/settings")
@requires(Access.ADMIN)
def settings() -> ResponseReturnValue:
    rows: list[dict[str, Any]] = []
    for name, (default, description) in SETTINGS.items():
        value = current_app.config.get(name)
        shown = ("已设置" if value else "未设置") if name in SECRET_SETTINGS else value
        rows.append(
            {
                "name": f"KB_{name}",
                "value": shown,
                "default": value == default,
                "description": description,
            }
        )
    # The embedding models in force: coverage of the library, serving or still filling.
    return render_template("admin/settings.html", rows=rows, models=backfill.model_states())
