"""Sign in, sign out and one's own account (password change)."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from kb import audit
from kb.access import SESSION_ID_KEY, Access, requires, safe_next
from kb.accounts import services as accounts
from kb.database import write_transaction
from kb.validation import InvalidInputError
from kb.web.security import account_wait_s, login_limit

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@requires(Access.PUBLIC)
@login_limit
def login() -> ResponseReturnValue:
    next_page = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_page or url_for("pages.index"))
        return render_template("auth/login.html", next=next_page or "", username="", error=None)
    username = request.form.get("username", "").strip()
    wait_s = account_wait_s(username, failed=False)
    if wait_s is not None:
        return _locked_out(next_page, username, wait_s)
    user = accounts.authenticate(username, request.form.get("password", ""))
    if user is None:
        wait_s = account_wait_s(username, failed=True)
        if wait_s is not None:
            return _locked_out(next_page, username, wait_s)
        page = render_template(
            "auth/login.html", next=next_page or "", username=username, error="用户名或密码错误"
        )
        return page, 401
    # A fresh session on sign-in: nothing an attacker planted before survives (session fixation).
    session.clear()
    session[SESSION_ID_KEY] = accounts.open_session(user.id)
    login_user(user)
    return redirect(next_page or url_for("pages.index"))


def _locked_out(next_page: str | None, username: str, wait_s: int) -> ResponseReturnValue:
    minutes = max(1, round(wait_s / 60))
    error = f"该账号登录失败次数过多，已暂时锁定：请约 {minutes} 分钟后再试，或请管理员重置密码"
    page = render_template("auth/login.html", next=next_page or "", username=username, error=error)
    return page, 429, {"Retry-After": str(wait_s)}


@bp.post("/logout")
@requires(Access.PUBLIC)
def logout() -> ResponseReturnValue:
    if current_user.is_authenticated:
        with write_transaction():
            audit.record("logout", f"user:{current_user.username}")
    sid = session.get(SESSION_ID_KEY)
    if isinstance(sid, str):
        accounts.close_session(sid)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@requires(Access.SIGNED_IN)
def account() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    if request.method == "POST":
        current = request.form.get("current_password", "")
        new = request.form.get("new_password", "")
        if not accounts.verify_password(current_user.id, current):
            errors["current_password"] = "当前密码不正确"  # noqa: S105  # a message
        elif new != request.form.get("new_password_again", ""):
            errors["new_password_again"] = "两次输入的新密码不一致"  # noqa: S105
        else:
            try:
                accounts.set_password(current_user.id, new)
            except InvalidInputError as exc:
                errors["new_password"] = exc.fields["password"]
        if not errors:
            # The new epoch ended this session too: sign in again with the fresh identifier.
            user = accounts.get_user(current_user.id)
            if user is not None:
                login_user(user)
            flash("密码已修改。", "success")
            return redirect(url_for("auth.account"))
    status = 422 if errors else 200
    return render_template("auth/account.html", user=g.kb_principal, errors=errors), status
