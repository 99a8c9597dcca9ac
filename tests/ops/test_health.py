"""/healthz and /readyz: open to anyone, details for admins only, 503 for each failed check."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.extensions import db
from kb.models import IndexOutbox, utcnow
from kb.searching import indexer
from tests.conftest import make_app


def _warm(app: Flask) -> None:
    with app.app_context():
        indexer.warm_up()


def test_healthz_answers_anyone_without_the_database(tmp_path: Path) -> None:
    app = make_app(tmp_path, "sqlite:////nonexistent/dir/kb.sqlite3", AUTO_MIGRATE=False)
    response = app.test_client(role=None).get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_waits_for_the_models_to_be_warmed_up(app: Flask) -> None:
    anonymous = app.test_client(role=None)
    before = anonymous.get("/readyz")
    assert before.status_code == 503
    assert before.get_json() == {"status": "not_ready", "failed": ["models"]}
    _warm(app)
    after = anonymous.get("/readyz")
    assert after.status_code == 200
    assert after.get_json() == {"status": "ready", "failed": []}


def test_admins_see_what_each_check_found(app: Flask) -> None:
    _warm(app)
    for admin in (app.test_client(role="admin"), _token_only(app, "admin")):
        body = admin.get("/readyz").get_json()
        checks = body["checks"]
        assert checks["database"] == {"ok": True}
        assert checks["migrations"]["ok"] is True
        assert checks["migrations"]["database"] == checks["migrations"]["head"] != []
        assert checks["models"] == {"ok": True, "embedders": ["fake"]}
        assert checks["index_lag"]["pending"] == 0
    # Anyone else, a wrong token included, gets the anonymous answer (no 401 for a probe).
    for caller in (app.test_client(role="viewer"), _token_only(app, "editor"), _bad_token(app)):
        response = caller.get("/readyz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "ready", "failed": []}


def test_an_old_index_change_makes_the_worker_not_ready(app: Flask) -> None:
    _warm(app)
    app.config["READY_MAX_INDEX_LAG_S"] = 60
    with app.app_context():
        db.session.add(IndexOutbox(campaign_id=1, created_at=utcnow() - timedelta(seconds=30)))
        db.session.commit()
    admin = app.test_client(role="admin")
    fresh = admin.get("/readyz")
    assert fresh.status_code == 200
    assert fresh.get_json()["checks"]["index_lag"]["pending"] == 1
    with app.app_context():
        db.session.add(IndexOutbox(campaign_id=2, created_at=utcnow() - timedelta(seconds=90)))
        db.session.commit()
    stale = admin.get("/readyz")
    assert stale.status_code == 503
    body = stale.get_json()
    assert body["failed"] == ["index_lag"]
    lag = body["checks"]["index_lag"]
    assert lag["pending"] == 2
    assert 90 <= lag["oldest_age_s"] < 200
    assert lag["max_age_s"] == 60


def test_a_database_behind_the_code_is_not_ready(app: Flask) -> None:
    _warm(app)
    with app.app_context():
        head = db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))
        db.session.execute(sa.text("UPDATE alembic_version SET version_num = 'older'"))
        db.session.commit()
    try:
        anonymous = app.test_client(role=None).get("/readyz")
        assert anonymous.status_code == 503
        assert anonymous.get_json() == {
            "status": "not_ready",
            "failed": ["migrations", "index_lag"],
        }
        detail = app.test_client(role="admin").get("/readyz").get_json()["checks"]["migrations"]
        assert detail == {"ok": False, "database": ["older"], "head": [head]}
    finally:
        with app.app_context():
            db.session.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head})
            db.session.commit()


def test_an_unreachable_database_is_named_without_its_error(tmp_path: Path) -> None:
    app = make_app(tmp_path, "sqlite:////nonexistent/dir/kb.sqlite3", AUTO_MIGRATE=False)
    # An admin token cannot be checked either: the same answer, no 500.
    for caller in (app.test_client(role=None), _bad_token(app)):
        response = caller.get("/readyz")
        assert response.status_code == 503
        assert response.get_json() == {
            "status": "not_ready",
            "failed": ["database", "migrations", "models", "index_lag"],
        }
        assert "nonexistent" not in response.get_data(as_text=True)


def test_the_probes_are_in_the_api_document(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/healthz", "/readyz"):
        operation = paths[path]["get"]
        assert operation["security"] == []
        assert operation["x-required-role"] is None
        assert "429" not in operation["responses"]  # outside /api/: no API rate limit
    not_ready = paths["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]
    assert not_ready["schema"] == {"$ref": "#/components/schemas/Readiness"}


def _token_only(app: Flask, role: str) -> FlaskClient:
    client = app.test_client(role=role)
    with client.session_transaction() as session:
        session.clear()
    return client


def _bad_token(app: Flask) -> FlaskClient:
    client = app.test_client(role=None)
    client.environ_base["HTTP_AUTHORIZATION"] = (
        "Bearer kbt_not-a-token"  # the prefix of ours: it is looked up
    )
    return client
