"""Who may do what: sign-in sessions (Flask-Login), bearer tokens and a role check on every route.

Every view declares what it needs with :func:`requires`; a view that declares nothing is open to
admins only, so a route someone forgets to mark fails closed (tests/test_permissions.py checks
that every route declares its access). Pages use the browser session; the API under /api/ takes
``Authorization: Bearer <token>`` and, for reads, the session too. Writes through the API need a
token: a session cookie alone never writes through the API, so CSRF does not apply there.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user
from werkzeug.wrappers import Response as BaseResponse

from kb.accounts import services as accounts
from kb.errors import MESSAGES, error_body
from kb.models import User

EXTENSION = "kb.access"
# The key under which the Flask session keeps its server-side sign-in id (UserSession).
SESSION_ID_KEY = "kb_sid"

SETTINGS: dict[str, tuple[Any, str]] = {
    "PUBLIC_READ": (
        False,
        "Let visitors who are not signed in read pages and call the read API (no writes).",
    ),
}


class Access(enum.Enum):
    """What a route needs."""

    PUBLIC = "public"  # anyone, always: sign-in page, static files, the API description
    READ = "read"  # viewers and up; also visitors when KB_PUBLIC_READ is on
    SIGNED_IN = "signed_in"  # any signed-in person (their own account page)
    EDIT = "edit"  # editors and admins
    ADMIN = "admin"  # admins


REQUIRED_ROLE = {
    Access.READ: "viewer",
    Access.SIGNED_IN: "viewer",
    Access.EDIT: "editor",
    Access.ADMIN: "admin",
}

F = TypeVar("F", bound=Callable[..., Any])


def requires(access: Access) -> Callable[[F], F]:
    """Declare what a view needs; checked before every request by :func:`_authorize`."""

    def mark(view: F) -> F:
        view.kb_access = access  # type: ignore[attr-defined]
        return view

    return mark


def access_of(app: Flask, endpoint: str) -> Access:
    """Return what an endpoint needs: its declaration, else ADMIN (closed by default)."""
    if endpoint == "static":
        return Access.PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, "kb_access", Access.ADMIN)


@dataclass(frozen=True)
class Principal:
    """Who is making the request: a signed-in user or an API token."""

    kind: str  # "user" | "token"
    id: int
    name: str
    role: str

    @property
    def actor(self) -> str:
        if self.kind == "token":
            return f"token:{self.id}:{self.name}"
        return f"user:{self.name}"

    def can(self, role: str) -> bool:
        return accounts.role_rank(self.role) >= accounts.role_rank(role)


def init_app(app: Flask) -> None:
    """Set up sessions and the check that runs before every request."""
    for name, (default, _) in SETTINGS.items():
        app.config.setdefault(name, default)
    manager = LoginManager()
    manager.login_view = "auth.login"
    manager.session_protection = "basic"
    manager.user_loader(_load_user)
    # Our check below answers unauthenticated requests; Flask-Login's would not know the API.
    manager.unauthorized_handler(lambda: _unauthorized("需要登录"))
    manager.init_app(app)
    app.extensions[EXTENSION] = manager
    app.before_request(_authorize)
    app.context_processor(_template_context)


def _load_user(user_id: str) -> User | None:
    # The session holds "id:epoch"; a new password or a disabled account moves the epoch on.
    raw_id, _, epoch = user_id.partition(":")
    if not raw_id.isdigit():
        return None
    user = accounts.get_user(int(raw_id))
    if user is None or not user.active or str(user.session_epoch) != epoch:
        return None
    # Signed out on the server (or never signed in through /login): a copied cookie is refused.
    sid = session.get(SESSION_ID_KEY)
    if not isinstance(sid, str) or not accounts.session_is_open(user.id, sid):
        return None
    return user


def current_principal() -> Principal | None:
    """Return who is making this request (after :func:`_authorize` ran), or None."""
    principal: Principal | None = g.get("kb_principal")
    return principal


def _is_api() -> bool:
    return request.path.startswith("/api/")


class _TokenRejectedError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _authenticate() -> Principal | None:
    if _is_api() and "Authorization" in request.headers:
        scheme, _, secret = request.headers["Authorization"].partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise _TokenRejectedError("Authorization 请求头须为 “Bearer <令牌>”")
        token = accounts.find_token(secret.strip())
        if token is None:
            raise _TokenRejectedError("令牌无效或已被吊销")
        principal = Principal("token", token.id, token.name, token.role)
        g.kb_actor = principal.actor
        accounts.touch_token(token, method=request.method, path=request.path)
        return principal
    if current_user.is_authenticated:
        return Principal("user", current_user.id, current_user.username, current_user.role)
    return None


def _authorize() -> BaseResponse | None:
    """Let the request through, or answer 401 (who are you?) / 403 (not allowed)."""
    if request.endpoint in (None, "static"):
        return None  # no such route (404/405 follow), or a stylesheet: no need to know who asks
    access = access_of(current_app, request.endpoint)
    try:
        principal = _authenticate()
    except _TokenRejectedError as exc:
        return _unauthorized(exc.message)
    g.kb_principal = principal
    g.kb_actor = principal.actor if principal else "anonymous"
    if access is Access.PUBLIC:
        return None
    if principal is None:
        if access is Access.READ and current_app.config["PUBLIC_READ"]:
            return None
        return _unauthorized()
    if _is_api() and access in (Access.EDIT, Access.ADMIN) and principal.kind != "token":
        return _unauthorized("通过 API 写入需要 API 令牌（Authorization: Bearer <令牌>）")
    if not principal.can(REQUIRED_ROLE[access]):
        return _forbidden(REQUIRED_ROLE[access])
    return None


def _unauthorized(message: str | None = None) -> BaseResponse:
    if _is_api():
        response = jsonify(error_body("unauthorized", message or MESSAGES[401]))
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="campaign-kb"'
        return response
    # The page asked for is where sign-in leads back to.
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _forbidden(role: str) -> Response:
    message = f"{MESSAGES[403]}：需要{accounts.ROLE_LABELS[role]}权限"
    if _is_api():
        response = jsonify(error_body("forbidden", message))
    else:
        response = Response(render_template("error.html", status=403, message=message))
    response.status_code = 403
    return response


def allowed(access: Access) -> bool:
    """Say whether this request's caller may do what ``access`` needs (for views doing several things)."""
    needed_role = REQUIRED_ROLE.get(access)
    if needed_role is None:
        return True
    principal = current_principal()
    if principal is None:
        return access is Access.READ and bool(current_app.config["PUBLIC_READ"])
    return principal.can(needed_role)


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a path on this site (never another host), else None."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


def _template_context() -> dict[str, Any]:
    principal = current_principal()

    def can(access: str) -> bool:
        return allowed(Access(access))

    return {"principal": principal, "can": can, "ROLE_LABELS": accounts.ROLE_LABELS}
