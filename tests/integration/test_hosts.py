"""Several hosts on one PostgreSQL database: gunicorn instances with their own data directories.

Each host keeps its own keyword index and vectors and follows the database's change feed; what is
written through one is searchable on every one, an import previewed on one is confirmed on
another, a host killed while embedding leaves its work to the others, and a host started later
builds everything from the database alone.
"""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.factories import campaign_payload
from tests.integration.live import (
    Server,
    Store,
    app_on,
    create_token,
    reset_postgres,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Short enough for a test: a dead host's claim and its hold on the feed end within seconds.
HOST_ENV = {"KB_INDEX_CLAIM_S": "10", "KB_INDEX_HOST_TIMEOUT_S": "20"}
SEARCHABLE_S = 30
LESSONS = "提前三天短信预热，沉睡会员回流率最高；社群转化偏低，下次减少社群投放。"


def _start(store: Store, token: str, log: Path) -> Server:
    server = Server(store, token, log, workers=1, index_interval_s=1, env=HOST_ENV)
    try:
        server.wait_ready(timeout_s=180)
    except BaseException:
        server.kill()
        raise
    return server


def _found(server: Server, campaign_id: int, text: str, mode: str) -> bool:
    found = server.get("/api/v1/search", q=text, mode=mode, limit=100)
    return campaign_id in {result["id"] for result in found["results"]}


def _everywhere(servers: list[Server], campaign_id: int, text: str, *, present: bool) -> None:
    """Wait until keyword and meaning search on every server find (or no longer find) it."""

    def agreed() -> bool:
        return all(
            _found(server, campaign_id, text, mode) is present
            for server in servers
            for mode in ("keyword", "semantic")
        )

    wait_until(agreed, timeout_s=SEARCHABLE_S, what=f"{text} {'found' if present else 'gone'}")


def _scalar(store: Store, sql: str, **params: Any) -> Any:
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def _kill_while_embedding(server: Server, store: Store, host: str) -> None:
    """SIGKILL the server as soon as its host holds a claim on embedding work."""
    engine = sa.create_engine(store.url)
    claimed = sa.text(
        "SELECT count(*) FROM index_outbox WHERE claimed_by = :host AND embedded_at IS NULL"
    )
    try:
        with engine.connect() as connection:
            deadline = time.monotonic() + 60
            while connection.execute(claimed, {"host": host}).scalar_one() == 0:
                assert time.monotonic() < deadline, "the host never claimed embedding work"
                connection.rollback()
                time.sleep(0.02)
        server.kill()
    finally:
        engine.dispose()


class Browser:
    """A signed-in browser session on one server (cookies and CSRF tokens), for its pages."""

    def __init__(self, server: Server, username: str, password: str) -> None:
        self.url = server.url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.post("/login", {"username": username, "password": password}, csrf_from="/login")

    def get(self, path: str) -> str:
        with self.opener.open(self.url + path, timeout=60) as response:
            return str(response.read().decode("utf-8"))

    def post(self, path: str, form: dict[str, str], *, csrf_from: str) -> str:
        page = self.get(csrf_from)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None, page[:500]
        data = urllib.parse.urlencode({**form, "csrf_token": token.group(1)}).encode()
        with self.opener.open(self.url + path, data=data, timeout=60) as response:
            return str(response.geturl())


def test_hosts_on_one_database_follow_every_write(tmp_path: Path, postgres_schema: str) -> None:
    first_store = Store(tmp_path / "first", postgres_schema)
    second_store = Store(tmp_path / "second", postgres_schema)
    reset_postgres(first_store)
    token = create_token(first_store)
    with app_on(first_store):
        from kb.accounts import services as accounts

        _, password = accounts.create_user("planner", "editor")
    first = _start(first_store, token, tmp_path / "first.log")
    second = _start(second_store, token, tmp_path / "second.log")
    third: Server | None = None
    servers = [first, second]
    try:
        # Created through one: found by keyword and by meaning on both.
        body = campaign_payload(title="蓝莓拼团小程序", external_id="blueberry", lessons=LESSONS)
        created = first.request("POST", "/api/v1/campaigns", body)
        assert created.status == 201, created.body
        campaign_id = created.body["id"]
        _everywhere(servers, campaign_id, "蓝莓拼团小程序", present=True)
        # The second host's status says it has applied the write.
        status = second.get("/api/v1/index/status")
        assert status["keyword_seq"] >= created.body["index_seq"]
        assert status["vector_seq"] >= created.body["index_seq"]
        assert status["host"] != first.get("/api/v1/index/status")["host"]

        # Changed through the other: the new title on both, the old one gone from keywords.
        changed = second.request(
            "PUT",
            f"/api/v1/campaigns/{campaign_id}",
            campaign_payload(title="榴莲快闪店", external_id="blueberry", version=1),
        )
        assert changed.status == 200, changed.body
        _everywhere(servers, campaign_id, "榴莲快闪店", present=True)
        for server in servers:
            wait_until(
                lambda server=server: not _found(server, campaign_id, "蓝莓拼团小程序", "keyword"),
                timeout_s=SEARCHABLE_S,
                what="old title gone",
            )

        # Trashed through the first: gone from both, by keyword and by meaning.
        assert first.request("DELETE", f"/api/v1/campaigns/{campaign_id}").status == 204
        _everywhere(servers, campaign_id, "榴莲快闪店", present=False)

        # An import previewed on the first host is confirmed on the second.
        rows = [campaign_payload(title="沉睡会员召回短信", external_id="imported")]
        preview = first.request("POST", "/api/v1/imports?dry_run=true", rows)
        assert preview.status == 202, preview.body
        job = preview.body["id"]
        wait_until(
            lambda: first.get(f"/api/v1/imports/{job}")["state"] == "done",
            timeout_s=60,
            what="preview done",
        )
        browser = Browser(second, "planner", password)
        landed = browser.post("/import/confirm", {"job": str(job)}, csrf_from=f"/import/jobs/{job}")
        confirmed = int(landed.rstrip("/").rsplit("/", 1)[-1])
        assert confirmed != job
        wait_until(
            lambda: first.get(f"/api/v1/imports/{confirmed}")["state"] == "done",
            timeout_s=60,
            what="import done",
        )
        imported = first.get(f"/api/v1/imports/{confirmed}")
        assert imported["progress"]["rows_written"] == 1
        assert imported["index_seq"] >= 1
        imported_id = imported["report"]["created"][0]["id"]
        _everywhere(servers, imported_id, "沉睡会员召回短信", present=True)

        # Many writes at once; the first host is killed while it holds embedding work.
        first_host = first.get("/api/v1/index/status")["host"]
        batch = [
            campaign_payload(
                title=f"会员日第{n}期复盘", external_id=f"batch-{n}", lessons=LESSONS * 200
            )
            for n in range(24)
        ]
        ids = [first.request("POST", "/api/v1/campaigns", body).body["id"] for body in batch]
        _kill_while_embedding(first, first_store, first_host)
        servers = [second]
        wait_until(
            lambda: second.get("/api/v1/index/status")["embedding_queue"] == 0,
            timeout_s=120,
            what="the second host finished the embeddings",
        )
        for campaign in (ids[0], ids[-1]):
            _everywhere(servers, campaign, f"会员日第{ids.index(campaign)}期复盘", present=True)

        # The dead host stops holding the feed back; a third host, started now, builds its
        # indexes from the database alone (the entries it would need are pruned).
        wait_until(
            lambda: _scalar(first_store, "SELECT count(*) FROM index_outbox") == 0,
            timeout_s=120,
            what="feed pruned",
        )
        third = _start(Store(tmp_path / "third", postgres_schema), token, tmp_path / "third.log")
        servers = [second, third]
        live = {imported_id, *ids}
        wait_until(lambda: third.listed_ids() == live, timeout_s=60, what="third host caught up")
        assert _found(third, ids[3], "会员日第3期复盘", "semantic")
        assert not _found(third, campaign_id, "榴莲快闪店", "keyword")
    finally:
        for server in (first, second, third):
            if server is not None:
                server.kill()
    for log in ("first.log", "second.log", "third.log"):
        text = (tmp_path / log).read_text(errors="replace")
        assert "Traceback" not in text, text[-5000:]
