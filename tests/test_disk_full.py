"""A full disk while writing: 503 with Retry-After and a Chinese message, JSON under /api/."""

from __future__ import annotations

import errno
from typing import Any

import psycopg.errors
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.campaigns import history
from kb.errors import DISK_FULL_MESSAGE, DISK_FULL_RETRY_AFTER_S
from kb.extensions import db
from kb.models import Campaign
from tests import contract
from tests.factories import campaign_payload
from tests.test_pages import form_data


def _assert_disk_full_answers(client: FlaskClient) -> None:
    answer = client.post("/api/v1/campaigns", json=campaign_payload(external_id=None))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(DISK_FULL_RETRY_AFTER_S)
    assert answer.get_json()["error"] == {"code": "disk_full", "message": DISK_FULL_MESSAGE}

    page = client.post("/campaigns/new", data=form_data())
    assert page.status_code == 503
    assert page.headers["Retry-After"] == str(DISK_FULL_RETRY_AFTER_S)
    assert DISK_FULL_MESSAGE in page.get_data(as_text=True)
    assert page.mimetype == "text/html"


def _count(app: Flask) -> int:
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count(Campaign.id))) or 0
        db.session.commit()
    return count


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        sa.exc.OperationalError("INSERT …", {}, psycopg.errors.DiskFull("could not extend file")),
    ],
    ids=["enospc", "quota", "postgresql-disk-full"],
)
def test_a_full_disk_in_a_write_answers_503(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    def full(*args: Any, **kwargs: Any) -> bytes:
        raise failure

    monkeypatch.setattr(history, "pack", full)  # inside the write, before its commit
    _assert_disk_full_answers(client)
    assert _count(app) == 0


def test_a_full_sqlite_database_answers_503(tmp_path: Any) -> None:
    from tests.conftest import make_app

    app = make_app(tmp_path, None)
    client = app.test_client()
    assert client.post("/api/v1/campaigns", json=campaign_payload()).status_code == 201

    @sa.event.listens_for(_engine(app), "connect")
    def _cap(connection: Any, _record: Any) -> None:
        # SQLite's own SQLITE_FULL: no page may be added beyond those the file has now.
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")

    with app.app_context():
        db.engine.dispose()  # new connections get the cap
    big = "满" * 90_000
    answer = client.post(
        "/api/v1/campaigns", json=campaign_payload(external_id="full-1", summary=big)
    )
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json()["error"]["code"] == "disk_full"
    assert answer.headers["Retry-After"] == str(DISK_FULL_RETRY_AFTER_S)
    assert _count(app) == 1


def _engine(app: Flask) -> sa.Engine:
    with app.app_context():
        return db.engine


def test_another_os_error_stays_a_500(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(history, "pack", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    answer = client.post("/api/v1/campaigns", json=campaign_payload())
    assert answer.status_code == 500
    assert "Retry-After" not in answer.headers
    contract.RECORDED.clear()  # an undocumented 500 is what this test wants to see
