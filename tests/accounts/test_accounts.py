"""Accounts and tokens: sign-in, sessions, tokens (hashed, revocable, last used), CLI, audit."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.accounts import services as accounts
from kb.extensions import db
from kb.models import ApiToken, AuditEvent, User
from kb.validation import InvalidInputError
from tests.factories import campaign_payload
from tests.signed_in import PASSWORD, ensure_account


def _events(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


def test_sign_in_and_out_with_the_login_form(app: Flask) -> None:
    ensure_account(app, "editor")
    client = app.test_client(role=None)
    assert client.get("/campaigns").headers["Location"] == "/login?next=/campaigns"

    wrong = client.post("/login", data={"username": "test-editor", "password": "nope"})
    assert wrong.status_code == 401
    assert "用户名或密码错误" in wrong.get_data(as_text=True)
    assert 'value="test-editor"' in wrong.get_data(as_text=True)  # what was typed stays

    signed_in = client.post(
        "/login", data={"username": "test-editor", "password": PASSWORD, "next": "/search"}
    )
    assert signed_in.headers["Location"] == "/search"
    page = client.get("/campaigns").get_data(as_text=True)
    assert "test-editor" in page
    assert "新建复盘" in page

    client.post("/logout")
    assert client.get("/campaigns").status_code == 302
    assert [e.target for e in _events(app, "login.failure")] == ["user:test-editor"]
    assert len(_events(app, "login.success")) == 1
    assert len(_events(app, "logout")) == 1


def test_a_copied_session_cookie_stops_working_after_sign_out(app: Flask) -> None:
    ensure_account(app, "editor")
    client = app.test_client(role=None)
    client.post("/login", data={"username": "test-editor", "password": PASSWORD})
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client(role=None)
    thief.set_cookie("session", cookie.value)
    assert thief.get("/campaigns").status_code == 200  # the copy works while signed in

    client.post("/logout")
    assert thief.get("/campaigns").status_code == 302  # and not once signed out
    assert thief.get("/campaigns").headers["Location"].startswith("/login")
    # Signing in again starts a new session; the old copy stays dead.
    client.post("/login", data={"username": "test-editor", "password": PASSWORD})
    assert client.get("/campaigns").status_code == 200
    assert thief.get("/campaigns").status_code == 302


def test_login_never_redirects_off_site(app: Flask) -> None:
    ensure_account(app, "viewer")
    client = app.test_client(role=None)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.post(
            "/login", data={"username": "test-viewer", "password": PASSWORD, "next": target}
        )
        assert response.headers["Location"] == "/", target
        client.post("/logout")


def test_a_disabled_account_cannot_sign_in_and_its_session_ends(app: Flask) -> None:
    editor = ensure_account(app, "editor")
    client = app.test_client(role="editor")
    assert client.get("/campaigns").status_code == 200
    with app.app_context():
        accounts.update_user(editor.user_id, active=False)
    assert client.get("/campaigns").status_code == 302
    response = app.test_client(role=None).post(
        "/login", data={"username": "test-editor", "password": PASSWORD}
    )
    assert response.status_code == 401


def test_changing_the_password_ends_other_sessions(app: Flask) -> None:
    ensure_account(app, "viewer")
    mine, other = app.test_client(role=None), app.test_client(role=None)
    for client in (mine, other):
        client.post("/login", data={"username": "test-viewer", "password": PASSWORD})
    mismatch = mine.post(
        "/account",
        data={
            "current_password": PASSWORD,
            "new_password": "a-new-password-1",
            "new_password_again": "another-one-22",
        },
    )
    assert mismatch.status_code == 422
    assert "两次输入的新密码不一致" in mismatch.get_data(as_text=True)
    changed = mine.post(
        "/account",
        data={
            "current_password": PASSWORD,
            "new_password": "a-new-password-1",
            "new_password_again": "a-new-password-1",
        },
    )
    assert changed.status_code == 302
    assert mine.get("/campaigns").status_code == 200  # this session carries on
    assert other.get("/campaigns").status_code == 302  # the other one ends


def test_last_admin_cannot_be_demoted_or_disabled(app: Flask) -> None:
    admin = ensure_account(app, "admin")
    with app.app_context():
        with pytest.raises(InvalidInputError) as demoted:
            accounts.update_user(admin.user_id, role="editor")
        assert "管理员" in demoted.value.fields["role"]
        with pytest.raises(InvalidInputError) as disabled:
            accounts.update_user(admin.user_id, active=False)
        assert "管理员" in disabled.value.fields["role"]


def test_passwords_are_stored_as_argon2id(app: Flask) -> None:
    with app.app_context():
        user, password = accounts.create_user("alice", "viewer")
        stored = db.session.get(User, user.id)
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert password not in stored.password_hash
        assert accounts.authenticate("ALICE", password) is not None  # usernames ignore case


def test_tokens_are_stored_hashed_revocable_and_record_their_use(app: Flask) -> None:
    with app.app_context():
        issued = accounts.create_token("crm-sync", "editor")
        row = db.session.get(ApiToken, issued.token.id)
        assert row is not None
        assert issued.secret not in (row.token_sha256, row.prefix)
        assert row.last_used_at is None
    anonymous = app.test_client(role=None)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    created = anonymous.post("/api/v1/campaigns", json=campaign_payload(), headers=headers)
    assert created.status_code == 201
    with app.app_context():
        row = db.session.get(ApiToken, issued.token.id)
        assert row is not None
        assert row.last_used_at is not None
        accounts.revoke_token(issued.token.id)
    refused = anonymous.get("/api/v1/campaigns", headers=headers)
    assert refused.status_code == 401
    assert refused.json["error"]["message"] == "令牌无效或已被吊销"  # type: ignore[index]
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    uses = _events(app, "token.use")
    assert [e.target for e in uses] == [f"token:{issued.token.id}:crm-sync"]
    (create,) = _events(app, "campaign.create")
    assert create.actor == f"token:{issued.token.id}:crm-sync"


def test_a_malformed_authorization_header_is_401(app: Flask) -> None:
    client = app.test_client(role=None)
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer kbt_not-a-real-token"):
        response = client.get("/api/v1/campaigns", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_a_session_reads_the_api_but_writes_need_a_token(app: Flask) -> None:
    client = app.test_client(role="editor")
    del client.environ_base["HTTP_AUTHORIZATION"]
    assert client.get("/api/v1/campaigns").status_code == 200
    response = client.post("/api/v1/campaigns", json=campaign_payload())
    assert response.status_code == 401
    assert "API 令牌" in response.json["error"]["message"]  # type: ignore[index]


def test_public_read_lets_visitors_read_but_not_write(app: Flask) -> None:
    app.config["PUBLIC_READ"] = True
    client = app.test_client(role=None)
    assert client.get("/campaigns").status_code == 200
    assert client.get("/api/v1/campaigns").status_code == 200
    assert "登录" in client.get("/campaigns").get_data(as_text=True)
    assert client.get("/campaigns/new").status_code == 302
    assert client.post("/api/v1/campaigns", json=campaign_payload()).status_code == 401
    assert client.get("/admin/users").status_code == 302


def test_cli_creates_users_and_tokens(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["users", "bootstrap"])
    assert first.exit_code == 0, first.output
    password = re.search(r"密码.*：(\S+)", first.output)
    assert password is not None
    again = runner.invoke(args=["users", "bootstrap"])
    assert password.group(1) not in again.output  # printed once, never again
    with app.app_context():
        assert accounts.authenticate("admin", password.group(1)) is not None

    created = runner.invoke(args=["users", "create", "bob", "--role", "viewer"])
    assert created.exit_code == 0, created.output
    with app.app_context():
        assert accounts.authenticate("bob", created.output.strip().splitlines()[-1]) is not None

    token = runner.invoke(args=["tokens", "create", "--name", "bi", "--role", "editor"])
    assert token.exit_code == 0, token.output
    secret = token.output.strip().splitlines()[-1]
    client = app.test_client(role=None)
    headers = {"Authorization": f"Bearer {secret}"}
    assert (
        client.post("/api/v1/campaigns", json=campaign_payload(), headers=headers).status_code
        == 201
    )
    assert secret not in runner.invoke(args=["tokens", "list"]).output

    duplicate = runner.invoke(args=["users", "create", "BOB"])
    assert duplicate.exit_code != 0
    assert "已存在" in duplicate.output


def test_admin_pages_create_users_and_tokens_shown_once(app: Flask, client: FlaskClient) -> None:
    page = client.post("/admin/users", data={"username": "carol", "role": "editor"})
    assert page.status_code == 200
    shown = re.search(r'<code class="secret">([^<]+)</code>', page.get_data(as_text=True))
    assert shown is not None
    with app.app_context():
        assert accounts.authenticate("carol", shown.group(1)) is not None
    assert shown.group(1) not in client.get("/admin/users").get_data(as_text=True)

    bad = client.post("/admin/users", data={"username": "x", "role": "editor"})
    assert bad.status_code == 422
    assert "用户名须为" in bad.get_data(as_text=True)

    issued = client.post("/admin/tokens", data={"name": "大屏", "role": "viewer"})
    secret = re.search(r'<code class="secret">([^<]+)</code>', issued.get_data(as_text=True))
    assert secret is not None
    anonymous = app.test_client(role=None)
    headers = {"Authorization": f"Bearer {secret.group(1)}"}
    assert anonymous.get("/api/v1/campaigns", headers=headers).status_code == 200
    assert anonymous.post("/api/v1/campaigns", json={}, headers=headers).status_code == 403

    audit_page = client.get("/admin/audit?action=token").get_data(as_text=True)
    assert "新建令牌" in audit_page
    assert "大屏" in audit_page
