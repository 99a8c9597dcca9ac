"""What a client waits on after a write: index_seq in the answer, the index status, the pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from kb.extensions import db
from kb.searching import indexer
from kb.searching.worker import WORKER
from tests.conftest import make_app
from tests.factories import campaign_payload


@pytest.fixture
def queued(tmp_path: Path) -> Flask:
    """An app whose writes are only queued (as under gunicorn): the test drains when it chooses."""
    app = make_app(tmp_path, None, INDEX_SYNC=False)
    app.extensions[WORKER] = _Asleep()  # no background indexer thread: it would race the test
    return app


class _Asleep:
    def wake(self) -> None:
        pass


def test_a_write_answer_names_its_feed_entry_and_the_status_says_when_it_is_searchable(
    queued: Flask,
) -> None:
    client = queued.test_client(role="editor")
    created = client.post("/api/v1/campaigns", json=campaign_payload(title="蓝莓拼团小程序"))
    assert created.status_code == 201
    seq = created.json["index_seq"]
    assert created.headers["Index-Seq"] == str(seq)
    assert created.json["indexed"] is False  # only queued: the background indexer has not run
    status = client.get("/api/v1/index/status").json
    assert status["head_seq"] == seq
    assert status["keyword_seq"] < seq
    assert status["lag_entries"] == 1
    assert status["embedding_queue"] == 1
    assert "last_error" not in status
    assert queued.test_client(role="admin").get("/api/v1/index/status").json["last_error"] is None
    page = client.get("/search?q=蓝莓")
    assert "索引中…（1 条更新尚未可搜）" in page.get_data(as_text=True)

    with queued.app_context():
        indexer.drain()
    status = client.get("/api/v1/index/status").json
    assert status["keyword_seq"] >= seq
    assert status["vector_seq"] >= seq
    assert status["lag_entries"] == 0
    assert status["embedding_queue"] == 0
    assert "hosts" not in status  # host details are for admins
    detail = queued.test_client(role="admin").get("/api/v1/index/status").json
    assert [h["host"] for h in detail["hosts"]] == [detail["host"]]
    assert "索引中" not in client.get("/search?q=蓝莓").get_data(as_text=True)

    campaign_id = created.json["id"]
    updated = client.put(
        f"/api/v1/campaigns/{campaign_id}", json=campaign_payload(title="蓝莓拼团 2", version=1)
    )
    assert updated.json["index_seq"] > seq
    trashed = client.delete(f"/api/v1/campaigns/{campaign_id}")
    assert int(trashed.headers["Index-Seq"]) > updated.json["index_seq"]
    restored = client.post(f"/api/v1/trash/{campaign_id}/restore")
    assert restored.json["index_seq"] > int(trashed.headers["Index-Seq"])


def test_a_synchronous_write_is_indexed_in_its_answer(app: Flask) -> None:
    created = app.test_client(role="editor").post(
        "/api/v1/campaigns", json=campaign_payload(title="榴莲快闪店")
    )
    assert created.json["indexed"] is True


def test_the_last_indexing_error_is_shown(queued: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from search.keyword import KeywordIndex

    client = queued.test_client(role="editor")
    client.post("/api/v1/campaigns", json=campaign_payload(title="会员日", external_id="a"))
    with queued.app_context():
        indexer.drain()
    client.post("/api/v1/campaigns", json=campaign_payload(title="会员周", external_id="b"))

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("磁盘已满")

    monkeypatch.setattr(KeywordIndex, "upsert", broken)
    with queued.app_context(), pytest.raises(OSError, match="磁盘已满"):
        indexer.drain()
    with queued.app_context():
        db.session.remove()
    error = queued.test_client(role="admin").get("/api/v1/index/status").json["last_error"]
    assert error["message"] == "OSError: 磁盘已满"
    # The error can name paths and servers: an editor or a viewer sees the lag, not the error.
    for role in ("editor", "viewer"):
        status = queued.test_client(role=role).get("/api/v1/index/status").json
        assert "last_error" not in status
        assert "hosts" not in status
        assert status["lag_entries"] == 1
