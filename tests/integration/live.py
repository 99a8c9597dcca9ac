"""A real server for system tests: gunicorn on a data dir, an API client, and checks of its state.

The server runs in its own process group so a test can SIGKILL it (and its workers) at once. The
checks read the database and the index files in this process, the way a worker would at start.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Flask

from tests.integration.conftest import MODELS_DIR

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
GUNICORN = BIN / "gunicorn"
FLASK = BIN / "flask"
# USE multilingual only: a real model, but the fast one (e5 as well would triple the indexing time).
EMBEDDING_MODELS = "use"


@dataclass(frozen=True)
class Store:
    """Where a server keeps its data: a data dir, and the database (SQLite in it, or a URL)."""

    data_dir: Path
    database_url: str | None = None

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'kb.sqlite3'}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url is None

    def config(self) -> dict[str, Any]:
        """Settings for an app in this process on this store."""
        settings: dict[str, Any] = {
            "TESTING": True,
            "DATA_DIR": str(self.data_dir),
            "MODELS_DIR": str(MODELS_DIR),
            "EMBEDDING_MODELS": EMBEDDING_MODELS,
            "RATELIMIT_ENABLED": False,
        }
        if self.database_url:
            settings["DATABASE_URL"] = self.database_url
        return settings

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a server or CLI process on this store."""
        env = {
            **os.environ,
            "KB_DATA_DIR": str(self.data_dir),
            "KB_MODELS_DIR": str(MODELS_DIR),
            "KB_EMBEDDING_MODELS": EMBEDDING_MODELS,
            # 8 clients from one address send far more than the API's per-address limit.
            "KB_RATELIMIT_ENABLED": "false",
            "HF_HUB_OFFLINE": "1",
            **extra,
        }
        if self.database_url:
            env["KB_DATABASE_URL"] = self.database_url
        return env


@contextmanager
def app_on(store: Store, *, migrate: bool = False) -> Iterator[Flask]:
    """An app in this process on the store, inside an app context; closed cleanly after."""
    from kb import create_app
    from tests.conftest import release

    store.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app({**store.config(), "AUTO_MIGRATE": migrate})
    try:
        with app.app_context():
            yield app
    finally:
        release(app)


def create_token(store: Store, role: str = "editor") -> str:
    """Create the store's database if needed and issue an API token; return its secret."""
    from kb.accounts import services as accounts

    with app_on(store, migrate=True):
        return accounts.create_token("system-tests", role).secret


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what or 'condition'} not met within {timeout_s} s")


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


class Server:
    """gunicorn serving ``kb:create_app()`` on a store, with a bearer token for its API."""

    def __init__(
        self,
        store: Store,
        token: str,
        log_path: Path,
        *,
        workers: int = 2,
        threads: int = 1,
        index_interval_s: float = 5,
        env: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.token = token
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(GUNICORN),
            "--workers", str(workers),
            "--threads", str(threads),
            "--bind", f"127.0.0.1:{self.port}",
            "kb:create_app()",
        ]  # fmt: skip
        environ = store.env(KB_INDEX_INTERVAL_S=json.dumps(index_interval_s), **(env or {}))
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=environ, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout_s: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.process.returncode}: {self.log}")
            try:
                return self.request("GET", "/api/v1/campaigns").status == 200
            except OSError:
                return False

        wait_until(ready, timeout_s=timeout_s, what="server ready")

    def kill(self) -> None:
        """SIGKILL gunicorn and its workers together (no clean-up runs anywhere)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def request(self, method: str, path: str, body: Any = None) -> Reply:
        """Send one request; return status and JSON body. Connection errors are raised."""
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310  # the local test server
            self.url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return Reply(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, _json(error.read()))

    def get(self, path: str, **params: Any) -> Any:
        """GET that must succeed; return its JSON body."""
        reply = self.request("GET", f"{path}?{urlencode(params, doseq=True)}" if params else path)
        assert reply.status == 200, (path, reply)
        return reply.body

    def listed_ids(self) -> set[int]:
        """Every campaign id the keyword index serves: empty-query search, page by page."""
        ids: set[int] = set()
        offset = 0
        while True:
            page = self.get("/api/v1/search", q="", limit=100, offset=offset)
            ids |= {result["id"] for result in page["results"]}
            offset += 100
            if offset >= page["total"]:
                assert len(ids) == page["total"], (len(ids), page["total"])
                return ids

    def finds(self, campaign_id: int, title: str, mode: str = "keyword") -> bool:
        """Say whether searching for the title returns this campaign."""
        found = self.get("/api/v1/search", q=title, mode=mode, limit=100)
        return campaign_id in {result["id"] for result in found["results"]}


def _json(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


@contextmanager
def gunicorn(
    env: dict[str, str], log_path: Path, *, workers: int = 1
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Run gunicorn with the project's gunicorn.conf.py on a free port until the block ends.

    Yields the master process and its port; its output goes to ``log_path``. Stopped with
    SIGTERM at the end, as an operator would.
    """
    port = free_port()
    command = [
        str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"),
        "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "kb:create_app()",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def serving(store: Store, token: str, log_path: Path, **options: Any) -> Iterator[Server]:
    """Run a server until the block ends, then SIGKILL it."""
    server = Server(store, token, log_path, **options)
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()


# The state of the database and the indexes


def outbox_size(store: Store) -> int:
    """Entries of the change feed some host has still to apply or embed (0: all caught up).

    The feed keeps applied entries until every live host has passed them (pruning runs about
    once a minute), so it is not the table's size.
    """
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as connection:
            count: int = connection.execute(
                sa.text(
                    "SELECT count(*) FROM index_outbox WHERE embedded_at IS NULL"
                    " OR id > (SELECT coalesce(min(last_seq), 0) FROM index_host)"
                )
            ).scalar_one()
            return count
    finally:
        engine.dispose()


def sqlite_integrity(store: Store) -> str:
    import sqlite3

    with sqlite3.connect(store.data_dir / "kb.sqlite3") as connection:
        result: str = connection.execute("PRAGMA integrity_check").fetchone()[0]
    connection.close()
    return result


@dataclass
class IndexReport:
    """How the indexes differ from the database; empty lists and dicts when they agree."""

    live: dict[int, int] = field(default_factory=dict)  # campaign id -> version, not trashed
    keyword_wrong: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)
    vectors_missing: list[int] = field(default_factory=list)
    vectors_stale: list[int] = field(default_factory=list)
    outbox: int = 0

    @property
    def consistent(self) -> bool:
        return not (self.keyword_wrong or self.vectors_missing or self.vectors_stale or self.outbox)


def index_report(store: Store) -> IndexReport:
    """Compare the keyword index (its files) and the stored vectors with the database."""
    from kb.extensions import db
    from kb.models import Campaign, PassageEmbedding
    from kb.searching.documents import campaign_text
    from kb.searching.indexer import get_indexes, load_live
    from search.documents import passages

    with app_on(store):
        indexes = get_indexes()
        report = IndexReport()
        report.live = dict(
            db.session.execute(
                sa.select(Campaign.id, Campaign.version).where(Campaign.deleted_at.is_(None))
            ).all()
        )
        indexed = indexes.keyword.versions()
        for campaign_id in set(indexed) | set(report.live):
            if indexed.get(campaign_id) != report.live.get(campaign_id):
                report.keyword_wrong[campaign_id] = (
                    report.live.get(campaign_id),
                    indexed.get(campaign_id),
                )
        stored: dict[int, list[str]] = {}
        for campaign_id, sha1 in db.session.execute(
            sa.select(PassageEmbedding.campaign_id, PassageEmbedding.text_sha1)
            .where(PassageEmbedding.model == EMBEDDING_MODELS)
            .order_by(PassageEmbedding.campaign_id, PassageEmbedding.position)
        ):
            stored.setdefault(campaign_id, []).append(sha1)
        for campaign in load_live(sorted(report.live)):
            expected = [
                hashlib.sha1(p.cache_key.encode("utf-8"), usedforsecurity=False).hexdigest()
                for p in passages(campaign_text(campaign))
            ]
            if campaign.id not in stored:
                report.vectors_missing.append(campaign.id)
            elif stored[campaign.id] != expected:
                report.vectors_stale.append(campaign.id)
        db.session.commit()
        report.outbox = outbox_size(store)
        return report


def loaded_vector_ids(store: Store) -> set[int]:
    """The campaign ids a worker starting now loads into its in-memory vector index."""
    from kb.searching.indexer import get_indexes

    with app_on(store):
        indexes = get_indexes()
        indexes.sync_vectors()
        return indexes.vectors[EMBEDDING_MODELS].campaigns()


def wait_consistent(store: Store, timeout_s: float) -> IndexReport:
    """Wait until the indexes agree with the database (or time out); return the last report."""
    deadline = time.monotonic() + timeout_s
    while True:
        late = time.monotonic() > deadline
        # Only a drained outbox is worth the full comparison (it builds an app: ~1 s).
        if late or outbox_size(store) == 0:
            report = index_report(store)
            if report.consistent or late:
                return report
        time.sleep(0.5)


def reset_postgres(store: Store) -> None:
    """Empty the shared PostgreSQL test database the way tests/conftest.py's ``app`` fixture does."""
    from kb.extensions import db
    from tests.conftest import TABLES

    with app_on(store, migrate=True), db.engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
