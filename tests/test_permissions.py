"""The permission matrix: every route × anonymous / viewer / editor / admin / API token.

What each route needs is written out here, from the product's rules, not read back from the code:
viewers read; editors write campaigns, playbooks, imports and the trash; admins manage users,
tokens, settings, the audit log and purge the trash. A route missing from the table fails the test,
so a new route cannot ship without a decision on who may use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kb.extensions import db
from kb.models import ApiToken, AuditEvent, Campaign, CampaignVersion, Playbook, User
from kb.searching import indexer
from tests.factories import campaign_payload
from tests.signed_in import ensure_account

READ, SIGNED_IN, EDIT, ADMIN, PUBLIC = "read", "signed_in", "edit", "admin", "public"

# (method, rule) → what it needs.
MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/"): READ,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/account"): SIGNED_IN,
    ("POST", "/account"): SIGNED_IN,
    ("GET", "/static/<path:filename>"): PUBLIC,
    # Probes for the proxy or orchestrator: no sign-in; details for admins only (tests/ops)
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    # Reading pages
    ("GET", "/campaigns"): READ,
    ("GET", "/campaigns/<int:campaign_id>"): READ,
    ("GET", "/campaigns/<int:campaign_id>/history"): READ,
    ("GET", "/campaigns/<int:campaign_id>/history/<int:version>"): READ,
    ("GET", "/campaigns/<int:campaign_id>/print"): READ,
    ("GET", "/campaigns/<int:campaign_id>/export.md"): READ,
    ("GET", "/campaigns/export.<fmt>"): READ,
    ("GET", "/search"): READ,
    ("GET", "/search/export.<fmt>"): READ,
    ("GET", "/drafts/new"): READ,
    ("POST", "/drafts/new"): READ,  # analysing a draft stores nothing
    ("GET", "/portfolio"): READ,
    ("GET", "/lessons"): READ,
    ("GET", "/playbooks/<int:playbook_id>"): READ,
    ("GET", "/playbooks"): READ,
    ("GET", "/campaigns/<int:campaign_id>/similar"): READ,
    # Writing pages
    ("GET", "/campaigns/new"): EDIT,
    ("POST", "/campaigns/new"): EDIT,
    ("GET", "/campaigns/<int:campaign_id>/edit"): EDIT,
    ("POST", "/campaigns/<int:campaign_id>/edit"): EDIT,
    ("POST", "/campaigns/<int:campaign_id>/delete"): EDIT,
    ("POST", "/campaigns/<int:campaign_id>/history/<int:version>/restore"): EDIT,
    ("POST", "/campaigns/<int:campaign_id>/similar/<int:other_id>/hide"): EDIT,
    ("GET", "/import"): EDIT,
    ("POST", "/import"): EDIT,
    ("POST", "/import/confirm"): EDIT,
    ("GET", "/import/draft/<token>"): EDIT,
    ("POST", "/import/draft/<token>"): EDIT,
    ("GET", "/playbooks/new"): EDIT,
    ("GET", "/playbooks/campaign-options"): EDIT,
    ("POST", "/playbooks/new"): EDIT,
    ("GET", "/playbooks/<int:playbook_id>/edit"): EDIT,
    ("POST", "/playbooks/<int:playbook_id>/edit"): EDIT,
    ("POST", "/playbooks/<int:playbook_id>/delete"): EDIT,
    ("GET", "/trash"): EDIT,
    ("POST", "/trash/<int:campaign_id>/restore"): EDIT,
    ("POST", "/trash/<int:campaign_id>/purge"): ADMIN,
    # Admin pages
    ("GET", "/admin/"): ADMIN,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/<int:user_id>"): ADMIN,
    ("GET", "/admin/tokens"): ADMIN,
    ("POST", "/admin/tokens"): ADMIN,
    ("POST", "/admin/tokens/<int:token_id>/revoke"): ADMIN,
    ("GET", "/admin/audit"): ADMIN,
    ("GET", "/admin/settings"): ADMIN,
    # API: reads
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/campaigns"): READ,
    ("GET", "/api/v1/campaigns/<int:campaign_id>"): READ,
    ("GET", "/api/v1/campaigns/<int:campaign_id>/similar"): READ,
    ("GET", "/api/v1/campaigns/<int:campaign_id>/signals"): READ,
    ("GET", "/api/v1/campaigns/<int:campaign_id>/versions"): READ,
    ("GET", "/api/v1/campaigns/<int:campaign_id>/versions/<int:version>"): READ,
    ("GET", "/api/v1/campaigns/export.<fmt>"): READ,
    ("GET", "/api/v1/search"): READ,
    ("GET", "/api/v1/index/status"): READ,
    ("POST", "/api/v1/similar"): READ,  # analysing a draft stores nothing
    ("GET", "/api/v1/portfolio"): READ,
    ("GET", "/api/v1/lessons"): READ,
    ("GET", "/api/v1/playbooks"): READ,
    ("GET", "/api/v1/playbooks/<int:playbook_id>"): READ,
    # API: writes
    ("POST", "/api/v1/campaigns"): EDIT,
    ("PUT", "/api/v1/campaigns/<int:campaign_id>"): EDIT,
    ("DELETE", "/api/v1/campaigns/<int:campaign_id>"): EDIT,
    ("POST", "/api/v1/campaigns/<int:campaign_id>/versions/<int:version>/restore"): EDIT,
    ("POST", "/api/v1/similar/feedback"): EDIT,
    ("POST", "/api/v1/imports"): EDIT,
    ("GET", "/api/v1/imports/<int:job_id>"): EDIT,
    ("GET", "/import/jobs/<int:job_id>"): EDIT,
    ("GET", "/import/jobs/<int:job_id>/progress"): EDIT,
    ("POST", "/api/v1/playbooks"): EDIT,
    ("PUT", "/api/v1/playbooks/<int:playbook_id>"): EDIT,
    ("DELETE", "/api/v1/playbooks/<int:playbook_id>"): EDIT,
    ("GET", "/api/v1/trash"): EDIT,
    ("POST", "/api/v1/trash/<int:campaign_id>/restore"): EDIT,
    ("DELETE", "/api/v1/trash/<int:campaign_id>"): ADMIN,
}

# Members of an answer that only some of the route's callers get: (method, rule) → member →
# what it needs. Every host's id and mark and the indexer's last error are host details.
MEMBERS: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/api/v1/index/status"): {"hosts": ADMIN, "last_error": ADMIN, "lag_entries": READ},
}

RANK = {"viewer": 0, "editor": 1, "admin": 2}
NEEDS = {READ: "viewer", SIGNED_IN: "viewer", EDIT: "editor", ADMIN: "admin"}


@dataclass(frozen=True)
class Caller:
    """Who calls: nobody, a role's browser session, or a role's API token."""

    name: str
    role: str | None
    via: str  # "nobody" | "session" | "token"


CALLERS = [
    Caller("anonymous", None, "nobody"),
    *(Caller(f"{role} session", role, "session") for role in RANK),
    *(Caller(f"{role} token", role, "token") for role in RANK),
]


def expected(need: str, caller: Caller, *, api: bool, public_read: bool) -> str:
    """Return "ok", "401", "login" (redirect to sign-in) or "403" for this caller."""
    if need == PUBLIC:
        return "ok"
    # Pages never look at tokens and the API's writes never accept a session.
    authenticated = (caller.via == "session" and not (api and need in (EDIT, ADMIN))) or (
        caller.via == "token" and api
    )
    if not authenticated:
        if need == READ and public_read:
            return "ok"
        return "401" if api else "login"
    assert caller.role is not None
    return "ok" if RANK[caller.role] >= RANK[NEEDS[need]] else "403"


def outcome(response: TestResponse, *, api: bool) -> str:
    if response.status_code == 401 and api:
        return "401"  # (a page's 401 is the sign-in form's own answer to a wrong password)
    if response.status_code == 403:
        return "403"
    if response.status_code == 302 and response.headers["Location"].startswith("/login?next="):
        return "login"
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    return "ok"


@dataclass
class World:
    """Ids the routes' placeholders are filled with."""

    values: dict[str, Any]

    def url(self, rule: str) -> str:
        return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(self.values[m.group(1)]), rule)


def _world(app: Flask) -> World:
    admin = app.test_client()
    ids = []
    for title in ("活动甲", "活动乙"):
        created = admin.post(
            "/api/v1/campaigns", json=campaign_payload(title=title, external_id=title)
        )
        assert created.status_code == 201, created.json
        ids.append(created.json["id"])  # type: ignore[index]
    playbook = admin.post(
        "/api/v1/playbooks",
        json={"title": "短信召回打法", "theme": "channel", "body": "先短信后社群"},
    )
    assert playbook.status_code == 201, playbook.json
    viewer = ensure_account(app, "viewer")
    with app.app_context():
        indexer.warm_up()  # as a gunicorn worker does at boot: /readyz answers 200, not 503
        token_id = db.session.scalar(db.select(ApiToken.id).where(ApiToken.name == "test-viewer"))
    return World(
        {
            "campaign_id": ids[0],
            "other_id": ids[1],
            "version": 1,
            "playbook_id": playbook.json["id"],  # type: ignore[index]
            "user_id": viewer.user_id,
            "token_id": token_id,
            "token": "no-such-draft",
            "job_id": 1,
            "fmt": "csv",
            "filename": "css/app.css",
        }
    )


def _state(app: Flask) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    with app.app_context():
        count = db.session.scalar
        return (
            count(db.select(db.func.count(Campaign.id))),
            count(db.select(db.func.sum(Campaign.version))),
            count(db.select(db.func.count(Campaign.id)).where(Campaign.deleted_at.isnot(None))),
            count(db.select(db.func.count(CampaignVersion.id))),
            count(db.select(db.func.sum(Playbook.version))),
            count(db.select(db.func.count(Playbook.id))),
            count(db.select(db.func.count(User.id))),
            tuple(db.session.execute(db.select(User.role, User.active).order_by(User.id))),
            count(db.select(db.func.count(ApiToken.id)).where(ApiToken.revoked_at.isnot(None))),
        )


def _client(app: Flask, caller: Caller) -> FlaskClient:
    client = app.test_client(role=caller.role)
    if caller.via == "token":
        with client.session_transaction() as session:
            session.clear()
    elif caller.via == "session":
        del client.environ_base["HTTP_AUTHORIZATION"]
    return client


def _request(client: FlaskClient, method: str, url: str) -> TestResponse:
    if url.startswith("/api/"):
        response = client.open(url, method=method, json={} if method in ("POST", "PUT") else None)
    else:
        response = client.open(url, method=method, data={} if method == "POST" else None)
    # Read and close: a streamed export holds its request context (and who signed in) until then.
    response.get_data()
    response.close()
    return response


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert routes - MATRIX.keys() == set(), "new routes need a line in MATRIX"
    assert MATRIX.keys() - routes == set(), "MATRIX names routes that no longer exist"


@pytest.mark.parametrize("public_read", [False, True], ids=["private", "public-read"])
def test_every_route_answers_each_caller_as_the_matrix_says(app: Flask, public_read: bool) -> None:
    app.config["PUBLIC_READ"] = public_read
    world = _world(app)
    for role in RANK:
        ensure_account(app, role)
    wrong = []
    # Refusals first, each checked to change nothing; then the allowed calls.
    # With public reading on, only what visitors may do changes.
    callers = CALLERS[:1] if public_read else CALLERS
    for refusals in (True, False):
        for (method, rule), need in sorted(MATRIX.items(), key=lambda item: item[0][1]):
            for caller in callers:
                want = expected(need, caller, api=rule.startswith("/api/"), public_read=public_read)
                if (want == "ok") == refusals:
                    continue
                before = _state(app) if refusals else None
                response = _request(_client(app, caller), method, world.url(rule))
                got = outcome(response, api=rule.startswith("/api/"))
                if got != want:
                    wrong.append(f"{method} {rule} as {caller.name}: {got}, expected {want}")
                elif refusals and _state(app) != before:
                    wrong.append(f"{method} {rule} as {caller.name}: refused but changed data")
    assert wrong == [], "\n".join(wrong)


def test_each_caller_gets_the_members_the_matrix_says(app: Flask) -> None:
    world = _world(app)
    for role in RANK:
        ensure_account(app, role)
    wrong = []
    for (method, rule), members in MEMBERS.items():
        api = rule.startswith("/api/")
        for caller in CALLERS:
            response = _request(_client(app, caller), method, world.url(rule))
            if outcome(response, api=api) != "ok":
                continue  # refused whole: the route matrix above checks that
            body = response.get_json()
            for member, need in members.items():
                # The route let the caller read: a member goes by the caller's role alone (an
                # admin's session reads the API as an admin; it only cannot write through it).
                want = caller.role is not None and RANK[caller.role] >= RANK[NEEDS[need]]
                if (member in body) != want:
                    shown = "shown" if member in body else "left out"
                    wrong.append(f"{method} {rule} as {caller.name}: {member} {shown}")
    assert wrong == [], "\n".join(wrong)


def test_refusals_are_not_audited_as_writes(app: Flask) -> None:
    world = _world(app)
    viewer = app.test_client(role="viewer")
    viewer.delete(world.url("/api/v1/campaigns/<int:campaign_id>"))
    with app.app_context():
        trashes = db.session.scalar(
            db.select(db.func.count(AuditEvent.id)).where(AuditEvent.action == "campaign.trash")
        )
    assert trashes == 0


def test_the_draft_page_reads_for_viewers_and_writes_for_editors(app: Flask) -> None:
    world = _world(app)
    form = {"title": "草案", "goal_type": "reactivation", "summary": "召回沉睡用户"}
    viewer = app.test_client(role="viewer")
    assert viewer.post("/drafts/new", data={**form, "action": "analyze"}).status_code in (200, 422)
    before = _state(app)
    for write in ({"action": "save"}, {"not_useful": str(world.values["campaign_id"])}):
        assert viewer.post("/drafts/new", data={**form, **write}).status_code == 403
    assert _state(app) == before
    page = viewer.get("/drafts/new").get_data(as_text=True)
    assert "保存为计划中活动" not in page
    assert "保存为计划中活动" in app.test_client(role="editor").get("/drafts/new").get_data(
        as_text=True
    )
