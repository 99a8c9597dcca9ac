"""Input no database can store or no parser can read gets a 4xx that says why, never a 500."""

from __future__ import annotations

import io

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import campaign_payload


def test_nul_in_a_json_field_is_a_field_error(client: FlaskClient) -> None:
    response = client.post("/api/v1/campaigns", json=campaign_payload(title="双十一\x00复盘"))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert set(error["fields"]) == {"title"}
    assert "空字符" in error["fields"]["title"]


def test_nul_in_a_nested_json_field_names_its_path(client: FlaskClient) -> None:
    payload = campaign_payload()
    payload["metrics"][1]["name"] = "转化\x00率"
    response = client.post("/api/v1/campaigns", json=payload)
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"metrics.1.name"}


def test_nul_at_sign_in_is_refused_on_both_databases(app: Flask) -> None:
    anonymous = app.test_client(role=None)  # type: ignore[call-arg]
    response = anonymous.post("/login", data={"username": "admin\x00", "password": "x"})
    assert response.status_code == 422
    assert "空字符" in response.get_data(as_text=True)


def test_nul_in_a_query_parameter_is_refused(client: FlaskClient) -> None:
    assert client.get("/search?q=%E5%88%B8%00").status_code == 422
    response = client.get("/api/v1/search?q=%00")
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"q": "含有空字符（NUL，\\x00），请删除后重试"}


def test_deeply_nested_json_is_a_400_on_every_json_endpoint(client: FlaskClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/api/v1/campaigns", "/api/v1/similar", "/api/v1/imports"):
        response = client.post(path, data=deep, content_type="application/json")
        assert response.status_code == 400, path
        assert response.get_json()["error"]["code"] == "malformed_json"


def test_a_nul_in_an_imported_row_rejects_that_row_only(client: FlaskClient) -> None:
    csv = (
        "活动名称,行业,部门,目标类型,开始日期,结束日期\n"
        "好的一行,电商,运营部,GMV,2025-01-01,2025-01-07\n"
        "坏的\x00一行,电商,运营部,GMV,2025-02-01,2025-02-07\n"
    )
    response = client.post(
        "/api/v1/imports",
        data={"file": (io.BytesIO(csv.encode()), "retros.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code < 500
    text = response.get_data(as_text=True)
    assert "空字符" in text


def _as_gunicorn_gives(text: str) -> str:
    return text.encode().decode("latin-1")  # the bytes sent, as Latin-1 text (PEP 3333)


def _as_flask_run_gives(text: str) -> str:
    return _as_gunicorn_gives(text).encode().decode("latin-1")  # Werkzeug's dev server, once more


def test_a_query_sent_as_raw_utf8_reads_as_utf8(client: FlaskClient) -> None:
    client.post("/api/v1/campaigns", json=campaign_payload(industry="电商"))
    client.post("/api/v1/campaigns", json=campaign_payload(external_id="other", industry="美妆"))
    # What a browser sends: percent-encoded.
    assert (
        client.get("/api/v1/campaigns", query_string={"industry": "电商"}).get_json()["total"] == 1
    )
    # What curl sends, as each server hands it over: the same answer.
    for given in (_as_gunicorn_gives("industry=电商"), _as_flask_run_gives("industry=电商")):
        response = client.get("/api/v1/campaigns", environ_overrides={"QUERY_STRING": given})
        assert response.get_json()["total"] == 1, given
    # Latin letters stay what they are.
    café = _as_gunicorn_gives("q=café")
    response = client.get("/api/v1/search", environ_overrides={"QUERY_STRING": café})
    assert response.get_json()["query"] == "café"
