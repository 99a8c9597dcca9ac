"""A SQLite write that waits past the busy timeout answers 503 with Retry-After, saving nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import make_app
from tests.factories import campaign_payload


def test_a_locked_database_answers_503_and_saves_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path, None, SQLITE_BUSY_TIMEOUT_S=0.2)
    client = app.test_client()
    blocker = sqlite3.connect(tmp_path / "data" / "kb.sqlite3", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        response = client.post("/api/v1/campaigns", json=campaign_payload())
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert response.json["error"]["code"] == "busy"  # type: ignore[index]
        page = client.post("/admin/tokens", data={"name": "报表", "role": "viewer"})
        assert page.status_code == 503
        assert "数据库正忙" in page.get_data(as_text=True)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert client.get("/api/v1/campaigns").json["total"] == 0  # type: ignore[index]
    assert client.post("/api/v1/campaigns", json=campaign_payload()).status_code == 201
