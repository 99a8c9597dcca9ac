"""Downloads name their type and charset once (a second charset parameter confuses clients)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.factories import campaign_payload

TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@pytest.mark.parametrize("fmt", sorted(TYPES))
def test_an_export_names_its_charset_once(client: FlaskClient, fmt: str) -> None:
    assert client.post("/api/v1/campaigns", json=campaign_payload()).status_code == 201
    for path in (f"/campaigns/export.{fmt}", f"/api/v1/campaigns/export.{fmt}"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["Content-Type"] == TYPES[fmt], path
        answer.close()


def test_a_markdown_download_names_its_charset_once(client: FlaskClient) -> None:
    created = client.post("/api/v1/campaigns", json=campaign_payload()).get_json()
    answer = client.get(f"/campaigns/{created['id']}/export.md")
    assert answer.headers["Content-Type"] == "text/markdown; charset=utf-8"
