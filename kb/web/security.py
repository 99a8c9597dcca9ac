"""Web safety: security headers on every response, session cookie flags and rate limits.

Rate limits use Flask-Limiter, one limiter per app (its state is per app: storage, enabled flag).
Every client address gets ``KB_RATELIMIT_API`` requests to ``/api/`` (all endpoints together) and
``KB_RATELIMIT_LOGIN`` login attempts (views decorated with :func:`login_limit`). Counters live in
``KB_RATELIMIT_STORAGE_URI``: ``memory://`` counts per process, so several gunicorn workers need a
shared store such as ``redis://127.0.0.1:6379``.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from flask import Flask, Response, current_app, make_response, render_template, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from werkzeug.exceptions import TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix

from kb.errors import MESSAGES, ApiError, api_error_response
from kb.web import input_guard

log = logging.getLogger(__name__)

EXTENSION = "kb.web.security"
KEY_PREFIX = "kb"

# Settings of this module, in the shape of kb.config.SETTINGS (documented in the README as KB_*).
SETTINGS: dict[str, tuple[Any, str]] = {
    "SESSION_COOKIE_SECURE": (
        False,
        "Send the session cookie over HTTPS only; turn on when a TLS proxy serves the app.",
    ),
    "TRUSTED_PROXIES": (
        0,
        "Reverse proxies in front of the app whose X-Forwarded-For/-Proto headers are trusted.",
    ),
    "RATELIMIT_ENABLED": (True, "Enforce the rate limits below."),
    "RATELIMIT_STORAGE_URI": (
        "memory://",
        "Where rate-limit counters live: memory:// (per process) or redis://127.0.0.1:6379.",
    ),
    "RATELIMIT_API": ("300 per minute", "Requests one client address may send to /api/."),
    "RATELIMIT_LOGIN": ("10 per minute", "Login attempts one client address may make."),
    "RATELIMIT_LOGIN_ACCOUNT": (
        "5 per 15 minutes",
        "Failed sign-ins one account may have, from any address, before it must wait.",
    ),
}

# No inline script or style anywhere: templates load one stylesheet and deferred script files.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
HSTS = "max-age=31536000"

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RateLimits:
    """This app's limiter and the parsed login limit (``app.extensions["kb.web.security"]``)."""

    limiter: Limiter
    enabled: bool
    login: RateLimitItem
    # Failed sign-ins per account (username), whatever address they come from.
    login_account: RateLimitItem
    # Counts login attempts in this process while the shared storage is unreachable.
    login_fallback: MovingWindowRateLimiter


def init_app(app: Flask) -> None:
    """Add security headers, harden the session cookie and apply rate limits; idempotent."""
    if EXTENSION in app.extensions:
        return
    for name, (default, _) in SETTINGS.items():
        app.config.setdefault(name, default)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    # Flask's own default is None (no SameSite attribute): Lax keeps cross-site POSTs cookieless.
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

    proxies = int(app.config["TRUSTED_PROXIES"])
    if proxies > 0:
        # Behind a proxy every request comes from its address: rate limits would be shared by all.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    app.extensions[EXTENSION] = _create_limits(app)
    input_guard.init_app(app)
    app.after_request(_add_headers)
    app.register_error_handler(TooManyRequests, _too_many_requests)


def _create_limits(app: Flask) -> RateLimits:
    # Parse now, so a malformed limit stops the app at start instead of failing each request.
    api_limit = str(app.config["RATELIMIT_API"])
    parse_many(api_limit)
    enabled = bool(app.config["RATELIMIT_ENABLED"])
    app.config["RATELIMIT_ENABLED"] = enabled
    limiter = Limiter(
        key_func=get_remote_address,
        application_limits=[api_limit],
        application_limits_exempt_when=_outside_api,
        strategy="moving-window",
        storage_uri=str(app.config["RATELIMIT_STORAGE_URI"]),
        headers_enabled=True,
        # A Redis outage must not take the API down: count in this process until it is back.
        in_memory_fallback_enabled=True,
        key_prefix=KEY_PREFIX,
        enabled=enabled,
    )
    limiter.init_app(app)
    return RateLimits(
        limiter=limiter,
        enabled=enabled,
        login=parse(str(app.config["RATELIMIT_LOGIN"])),
        login_account=parse(str(app.config["RATELIMIT_LOGIN_ACCOUNT"])),
        login_fallback=MovingWindowRateLimiter(MemoryStorage()),
    )


def _outside_api() -> bool:
    return not request.path.startswith("/api/")


def login_limit(view: Callable[P, R]) -> Callable[P, R]:
    """Allow ``KB_RATELIMIT_LOGIN`` attempts (POSTs) per client address, then answer 429."""

    @functools.wraps(view)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        if request.method == "POST":
            count_login_attempt()
        return view(*args, **kwargs)

    return limited


def count_login_attempt() -> None:
    """Count one login attempt from this client; raise TooManyRequests past the limit."""
    limits: RateLimits | None = current_app.extensions.get(EXTENSION)
    if limits is None or not limits.enabled:
        return
    seconds = _hit(limits, limits.login, "login", get_remote_address())
    if seconds is not None:
        raise TooManyRequests(retry_after=seconds)


def account_wait_s(username: str, *, failed: bool) -> int | None:
    """Seconds this account must wait before another sign-in, or None; ``failed`` counts one.

    Guessing one account's password from many addresses is limited here, per account, in the
    same storage as the address limits (shared by every worker with Redis).
    """
    limits: RateLimits | None = current_app.extensions.get(EXTENSION)
    if limits is None or not limits.enabled or not username:
        return None
    key = username.casefold()
    if failed:
        return _hit(limits, limits.login_account, "login-account", key)
    strategy = _strategy(limits)
    try:
        if strategy.test(limits.login_account, KEY_PREFIX, "login-account", key):
            return None
    except Exception:
        return None  # the storage is down: the address limit still applies
    reset_at = strategy.get_window_stats(limits.login_account, KEY_PREFIX, "login-account", key)
    return max(1, math.ceil(reset_at.reset_time - time.time()))


def _strategy(limits: RateLimits) -> RateLimiter:
    strategy: RateLimiter = limits.limiter.limiter
    return strategy


def _hit(limits: RateLimits, item: RateLimitItem, *identifiers: str) -> int | None:
    """Count one hit; return the seconds to wait when the limit is spent, else None."""
    keys = (KEY_PREFIX, *identifiers)
    strategy = _strategy(limits)
    try:
        allowed = strategy.hit(item, *keys)
    except Exception:
        log.warning("rate-limit storage unreachable; counting login attempts in this process")
        strategy = limits.login_fallback
        allowed = strategy.hit(item, *keys)
    if allowed:
        return None
    reset_at = strategy.get_window_stats(item, *keys).reset_time
    return max(1, math.ceil(reset_at - time.time()))


def _add_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def _too_many_requests(exc: TooManyRequests) -> Response:
    """Answer 429 in the one JSON error shape under /api/ and as the error page elsewhere."""
    if request.path.startswith("/api/"):
        response = make_response(api_error_response(ApiError(429)))
    else:
        page = render_template("error.html", status=429, message=MESSAGES[429])
        response = make_response(page, 429)
    # Retry-After of a login limit (API limits get theirs from Flask-Limiter's after_request).
    for name, value in exc.get_headers():
        if name.lower() == "retry-after":
            response.headers[name] = value
    return response
