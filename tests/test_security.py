"""Security headers on every response, session cookie flags, and rate limits with one 429 shape."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kb.errors import MESSAGES, error_body
from kb.extensions import db
from kb.web import security
from tests.conftest import make_app
from tests.signed_in import PASSWORD, ensure_account

ROOT = Path(__file__).resolve().parent.parent
MakeApp = Callable[..., Flask]


def secure(app: Flask) -> Flask:
    """Register kb.web.security on ``app`` unless ``create_app`` already did."""
    if security.EXTENSION not in app.extensions:
        security.init_app(app)
    return app


@pytest.fixture
def make_secured(tmp_path: Path, sqlite_template: Path) -> Iterator[MakeApp]:
    """Make apps with security registered, on copies of the migrated SQLite file."""
    made: list[Flask] = []

    def make(**config: Any) -> Flask:
        root = tmp_path / f"app{len(made)}"
        (root / "data").mkdir(parents=True)
        shutil.copy(sqlite_template, root / "data" / "kb.sqlite3")
        app = secure(make_app(root, None, **config))
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def client(make_secured: MakeApp) -> FlaskClient:
    return make_secured().test_client()


def with_login_route(app: Flask) -> Flask:
    """Add login-limited test views, a page and an API one, as the accounts views will be."""

    @security.login_limit
    def login_page() -> str:
        return "ok"

    @security.login_limit
    def login_api() -> Any:
        return jsonify(ok=True)

    app.add_url_rule("/test-login", "test_login", login_page, methods=["GET", "POST"])
    app.add_url_rule("/api/v1/test-login", "test_login_api", login_api, methods=["POST"])
    return app


# Headers -----------------------------------------------------------------------------------------

PATHS = [
    "/campaigns",
    "/campaigns/new",
    "/search?q=召回",
    "/trash",
    "/api/v1/campaigns",
    "/api/v1/openapi.json",
    "/static/js/app.js",
    "/static/css/app.css",
    "/campaigns/999",  # an HTML error page
    "/api/v1/campaigns/999",  # a JSON error
]


@pytest.mark.parametrize("path", PATHS)
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in {200, 404}
    for name, value in security.HEADERS.items():
        assert response.headers.get(name) == value, name
    # Plain http (the two-command setup) gets no HSTS: it would pin browsers to a missing https.
    assert "Strict-Transport-Security" not in response.headers
    response.close()


def test_https_requests_get_hsts(client: FlaskClient) -> None:
    response = client.get("/campaigns", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == security.HSTS


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_csp_allows_no_inline_script_or_style() -> None:
    policy = directives(security.CONTENT_SECURITY_POLICY)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert "'unsafe-inline'" not in security.CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" not in security.CONTENT_SECURITY_POLICY


INLINE = {
    # JSON data blocks (type="application/json") are never run, so the policy does not apply.
    "inline script": re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*\btype=\"application/json\")[^>]*>", re.IGNORECASE
    ),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


@pytest.mark.parametrize("kind", sorted(INLINE))
def test_templates_need_nothing_the_csp_forbids(kind: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for text in [path.read_text(encoding="utf-8")]
        for match in INLINE[kind].finditer(text)
    ]
    assert not found, f"{kind} blocked by the Content-Security-Policy: {found}"


# Session cookie ----------------------------------------------------------------------------------


def session_cookie(client: FlaskClient) -> str:
    # The form page puts its CSRF token in the session, so the response sets the cookie.
    response = client.get("/campaigns/new")
    cookies = [value for value in response.headers.getlist("Set-Cookie") if "session=" in value]
    assert cookies, response.headers
    return cookies[0]


def test_session_cookie_is_httponly_and_samesite_lax(make_secured: MakeApp) -> None:
    cookie = session_cookie(make_secured(WTF_CSRF_ENABLED=True).test_client())
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on 127.0.0.1 by default


def test_session_cookie_secure_when_configured(make_secured: MakeApp) -> None:
    app = make_secured(WTF_CSRF_ENABLED=True, SESSION_COOKIE_SECURE=True)
    cookie = session_cookie(app.test_client())
    assert "; Secure" in cookie
    assert "HttpOnly" in cookie


# Rate limits -------------------------------------------------------------------------------------


def test_limits_are_off_in_tests_by_default(make_secured: MakeApp) -> None:
    client = make_secured(RATELIMIT_API="1 per minute").test_client()
    statuses = {client.get("/api/v1/campaigns").status_code for _ in range(5)}
    assert statuses == {200}


def test_api_answers_429_in_the_one_error_shape(make_secured: MakeApp) -> None:
    client = make_secured(RATELIMIT_ENABLED=True, RATELIMIT_API="2 per minute").test_client()
    first = client.get("/api/v1/campaigns")
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "2"
    # One budget for the whole API, not one per endpoint.
    assert client.get("/api/v1/search", query_string={"q": "召回"}).status_code == 200

    refused = client.get("/api/v1/campaigns")
    assert refused.status_code == 429
    assert refused.mimetype == "application/json"
    assert refused.get_json() == error_body("too_many_requests", MESSAGES[429])
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    for name, value in security.HEADERS.items():
        assert refused.headers[name] == value

    # Pages are outside the API limit.
    assert client.get("/campaigns").status_code == 200


def test_api_limit_counts_per_client_address(make_secured: MakeApp) -> None:
    client = make_secured(RATELIMIT_ENABLED=True, RATELIMIT_API="1 per minute").test_client()
    assert client.get("/api/v1/campaigns").status_code == 200
    assert client.get("/api/v1/campaigns").status_code == 429
    other = {"REMOTE_ADDR": "10.0.0.7"}
    assert client.get("/api/v1/campaigns", environ_base=other).status_code == 200
    # Without a trusted proxy, X-Forwarded-For is the client's word and changes nothing.
    spoofed = client.get("/api/v1/campaigns", headers={"X-Forwarded-For": "10.9.9.9"})
    assert spoofed.status_code == 429


def test_trusted_proxy_limits_the_forwarded_address(make_secured: MakeApp) -> None:
    app = make_secured(RATELIMIT_ENABLED=True, RATELIMIT_API="1 per minute", TRUSTED_PROXIES=1)
    client = app.test_client()

    def get(address: str) -> int:
        return client.get("/api/v1/campaigns", headers={"X-Forwarded-For": address}).status_code

    assert (get("10.0.0.1"), get("10.0.0.1"), get("10.0.0.2")) == (200, 429, 200)


def test_login_limit_answers_an_html_page(make_secured: MakeApp) -> None:
    app = with_login_route(make_secured(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="2 per minute"))
    client = app.test_client()
    # Showing the form is free; only attempts (POSTs) count.
    assert all(client.get("/test-login").status_code == 200 for _ in range(5))
    assert client.post("/test-login").status_code == 200
    assert client.post("/test-login").status_code == 200

    refused = client.post("/test-login")
    assert refused.status_code == 429
    assert refused.mimetype == "text/html"
    assert MESSAGES[429] in refused.get_data(as_text=True)
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Content-Security-Policy"] == security.CONTENT_SECURITY_POLICY


def test_login_limit_under_api_answers_json(make_secured: MakeApp) -> None:
    app = with_login_route(make_secured(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="1 per minute"))
    client = app.test_client()
    assert client.post("/api/v1/test-login").status_code == 200
    refused = client.post("/api/v1/test-login")
    assert refused.status_code == 429
    assert refused.get_json() == error_body("too_many_requests", MESSAGES[429])


def test_login_limit_is_off_with_limits_off(make_secured: MakeApp) -> None:
    app = with_login_route(make_secured(RATELIMIT_LOGIN="1 per minute"))
    client = app.test_client()
    assert {client.post("/test-login").status_code for _ in range(4)} == {200}


@pytest.mark.parametrize("setting", ["RATELIMIT_API", "RATELIMIT_LOGIN"])
def test_a_malformed_limit_stops_the_app_at_start(make_secured: MakeApp, setting: str) -> None:
    with pytest.raises(ValueError, match="lots"):
        make_secured(RATELIMIT_ENABLED=True, **{setting: "lots"})


def test_init_app_is_idempotent(make_secured: MakeApp) -> None:
    app = make_secured()
    handlers = len(app.after_request_funcs[None])
    security.init_app(app)
    assert len(app.after_request_funcs[None]) == handlers
    response = app.test_client().get("/campaigns")
    assert response.headers.getlist("Content-Security-Policy") == [security.CONTENT_SECURITY_POLICY]


def test_limits_hold_while_the_shared_storage_is_down(make_secured: MakeApp) -> None:
    # Nothing listens on port 1: counting falls back to this process instead of failing requests.
    app = make_secured(
        RATELIMIT_ENABLED=True,
        RATELIMIT_API="2 per minute",
        RATELIMIT_LOGIN="1 per minute",
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1",
    )
    client = with_login_route(app).test_client()
    assert [client.post("/test-login").status_code for _ in range(2)] == [200, 429]
    assert [client.get("/api/v1/campaigns").status_code for _ in range(3)] == [200, 200, 429]


def _random_address() -> str:
    return "10." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))


def test_failed_sign_ins_of_one_account_are_limited_whatever_the_address(
    make_secured: MakeApp,
) -> None:
    app = make_secured(
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="100 per minute",
        RATELIMIT_LOGIN_ACCOUNT="3 per minute",
    )
    ensure_account(app, "editor")
    ensure_account(app, "viewer")

    def attempt(username: str, password: str) -> TestResponse:
        client = app.test_client(role=None)  # type: ignore[call-arg]
        client.environ_base["REMOTE_ADDR"] = _random_address()  # a new address every time
        return client.post("/login", data={"username": username, "password": password})

    assert [attempt("test-editor", "wrong").status_code for _ in range(3)] == [401, 401, 401]
    refused = attempt("test-editor", PASSWORD)  # even the right password waits now
    assert refused.status_code == 429
    assert "该账号登录失败次数过多" in refused.get_data(as_text=True)
    assert 'value="test-editor"' in refused.get_data(as_text=True)
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert attempt("test-viewer", PASSWORD).status_code == 302  # other accounts are not affected


def test_login_limits_are_shared_by_workers_through_redis(make_secured: MakeApp) -> None:
    settings = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_LOGIN": "3 per minute",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
    }
    workers = [with_login_route(make_secured(**settings)) for _ in range(2)]
    address = _random_address()
    codes = []
    for n in range(4):
        client = workers[n % 2].test_client()
        client.environ_base["REMOTE_ADDR"] = address
        codes.append(client.post("/test-login").status_code)
    assert codes == [200, 200, 200, 429]  # 3 in all, not 3 per worker
