"""Shared fixtures: an app on a real SQLite file or the real PostgreSQL, its client and runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from kb import create_app
from kb.extensions import db
from tests import contract
from tests.signed_in import SignedInClient

POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TABLES = (
    "audit_event", "api_token", "user_session", "user_account", "campaign_version", "playbook_citation", "playbook", "similar_feedback", "passage_embedding", "index_outbox", "index_host", "index_feed_state", "document", "hypothesis", "metric", "reward", "campaign", "import_job_row", "import_job",
)  # fmt: skip


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a migrated SQLite database file that each test copies (migrating once is faster)."""
    data_dir = tmp_path_factory.mktemp("template")
    app = create_app({"DATA_DIR": str(data_dir), "TESTING": True})
    with app.app_context():
        db.engine.dispose()
    return data_dir / "kb.sqlite3"


@pytest.fixture(scope="session")
def postgres_schema() -> str:
    """Reset the PostgreSQL test database once per session; fail (not skip) when it is missing."""
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for these tests ({POSTGRES_URL}): {exc}")
    finally:
        engine.dispose()
    return POSTGRES_URL


def make_app(tmp_path: Path, database_url: str | None, **config: Any) -> Flask:
    """Create a test app with its data under ``tmp_path``."""
    settings: dict[str, Any] = {
        "TESTING": True,
        "DATA_DIR": str(tmp_path / "data"),
        "WTF_CSRF_ENABLED": False,
        # Unit-level app tests index in the request with a hashing fake instead of a model;
        # tests/integration uses the real models.
        "EMBEDDING_MODELS": "fake",
        "INDEX_SYNC": True,
        # Many requests from one address in a second: tests/test_security.py turns limits on.
        "RATELIMIT_ENABLED": False,
        **config,
    }
    if database_url:
        settings["DATABASE_URL"] = database_url
    flask_app = create_app(settings)
    flask_app.test_client_class = SignedInClient
    # Every API answer a test produces is checked against the document (tests/contract.py).
    flask_app.after_request(contract.record)
    _made_apps.append(flask_app)
    return flask_app


# Apps made by a test, released when it ends (open index files would otherwise warn at GC time).
_made_apps: list[Flask] = []


@pytest.fixture(autouse=True)
def _release_made_apps() -> Iterator[None]:
    contract.RECORDED.clear()
    yield
    try:
        problems = contract.check_recorded()
        assert not problems, "API answers that do not match the OpenAPI document:\n" + "\n".join(
            problems[:20]
        )
    finally:
        while _made_apps:
            release(_made_apps.pop())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Flask:
    """An app on a fresh database: a copy of the migrated SQLite file, or emptied PostgreSQL."""
    if request.param == "sqlite":
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        shutil.copy(request.getfixturevalue("sqlite_template"), data_dir / "kb.sqlite3")
        flask_app = make_app(tmp_path, None)
    else:
        flask_app = make_app(tmp_path, request.getfixturevalue("postgres_schema"))
        with flask_app.app_context(), db.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    return flask_app


def release(flask_app: Flask) -> None:
    """Close what an app holds open: the keyword index's files and the database pool."""
    indexes = flask_app.extensions.get("kb.indexes")
    if indexes is not None:
        indexes.keyword.close()
    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def app_context(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield
