"""Ids, versions and pages past what the database holds: a Chinese 404/422, never a 500.

SQLite binds 64-bit integers (a bigger one is an OverflowError before the query), PostgreSQL
raises NumericValueOutOfRange past its column type; "²" passes ``str.isdigit`` and fails ``int``.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.database import form_id
from kb.extensions import db
from tests.factories import campaign_payload

BAD = ("99999999999999999999", str(2**63), str(2**31), "-1", "0", "²", "١٢", "1e3", " ")
DRAFT = {
    "title": "双11 召回草案",
    "goal_type": "reactivation",
    "status": "planned",
    "start_date": "2025-10-20",
    "end_date": "2025-11-12",
}


@pytest.mark.parametrize("text", BAD)
def test_form_id_refuses_what_cannot_be_an_id(text: str) -> None:
    assert form_id(text) is None


def test_form_id_reads_an_id() -> None:
    assert form_id(" 42 ") == 42
    assert form_id(str(2**31 - 1)) == 2**31 - 1


@pytest.mark.parametrize("text", BAD)
def test_admin_and_draft_forms_answer_out_of_range_ids(
    app: Flask, client: FlaskClient, text: str
) -> None:
    campaign = client.post("/api/v1/campaigns", json=campaign_payload()).get_json()
    answers: dict[str, Any] = {
        "user": client.post(f"/admin/users/{text.strip() or 'x'}", data={"action": "role"}),
        "token": client.post(f"/admin/tokens/{text.strip() or 'x'}/revoke"),
        "audit": client.get(f"/admin/audit?page={text}"),
        "campaign page": client.get(f"/campaigns/{text.strip() or 'x'}"),
        "campaign api": client.get(f"/api/v1/campaigns/{text.strip() or 'x'}"),
        "not useful": client.post("/drafts/new", data={**DRAFT, "not_useful": text}),
        "draft key": client.post("/drafts/new", data={**DRAFT, "draft_key": f"campaign:{text}"}),
        "restore": client.post(
            f"/campaigns/{campaign['id']}/history/1/restore", data={"expected_version": text}
        ),
        "edit": client.post(
            f"/campaigns/{campaign['id']}/edit",
            data={**DRAFT, "status": "completed", "version": text},
        ),
    }
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert all(status < 500 for status in statuses.values()), statuses
    assert statuses["audit"] == 200  # an unreadable page number shows the first page
    assert statuses["draft key"] == 200  # a key is a name, never looked up as an id
    if text.strip():
        assert statuses["not useful"] == 404
        assert "找不到该活动" in answers["not useful"].get_data(as_text=True)
        assert statuses["edit"] == 422
        assert "版本号无效" in answers["edit"].get_data(as_text=True)
        assert statuses["restore"] == 302  # back to the version, with the message flashed
    for name in ("user", "token"):  # 0 names no one: back to the list with a message
        assert statuses[name] in (302, 404), (name, statuses[name])
    for name in ("campaign page", "campaign api"):
        assert statuses[name] == 404, (name, statuses[name])
    assert answers["campaign api"].get_json()["error"]["message"]


def test_a_number_too_large_for_the_database_is_a_422_not_a_500(app: Flask) -> None:
    def overflowing_query() -> str:
        db.session.execute(sa.text("SELECT CAST(:n AS BIGINT)"), {"n": 2**64})
        return "unreachable"

    app.add_url_rule("/test/overflow", view_func=overflowing_query)
    app.add_url_rule("/api/test/overflow", "api_overflow", view_func=overflowing_query)
    client = app.test_client()
    page = client.get("/test/overflow")
    assert page.status_code == 422
    assert "数字超出范围" in page.get_data(as_text=True)
    answer = client.get("/api/test/overflow")
    assert answer.status_code == 422
    assert answer.get_json()["error"] == {
        "code": "out_of_range",
        "message": "数字超出范围：编号、版本或页码过大",
    }
