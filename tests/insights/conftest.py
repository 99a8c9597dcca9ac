"""Fixtures for the portfolio, signals, lessons and playbooks: apps with the insights blueprints.

The blueprints are registered here when ``create_app`` does not register them (yet); doing it
only when missing keeps these tests passing once it does.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.demo import load_demo
from kb.extensions import db
from kb.insights import views as insights
from kb.models import Campaign
from tests.conftest import TABLES, make_app

# Tables the shared PostgreSQL truncation (tests/conftest.py TABLES) does not list yet.
INSIGHT_TABLES = ("playbook_citation", "playbook")


def register_insights(app: Flask) -> Flask:
    """Register the insights pages on ``app`` unless it has them already (its API is in ``api``)."""
    if "insights" not in app.blueprints:
        app.register_blueprint(insights.bp)
    return app


def _truncate_postgres(app: Flask) -> None:
    tables = ", ".join(dict.fromkeys((*INSIGHT_TABLES, *TABLES)))
    with app.app_context(), db.engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture
def insights_app(app: Flask) -> Flask:
    """The per-test app (SQLite and PostgreSQL) with the insights blueprints."""
    register_insights(app)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            _truncate_postgres(app)
    return app


@pytest.fixture
def insights_client(insights_app: Flask) -> FlaskClient:
    return insights_app.test_client()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def demo_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """An app with the 55 demo campaigns loaded (once per module: loading takes seconds).

    Tests using it only read: they share its data.
    """
    tmp_path = tmp_path_factory.mktemp("insights-demo")
    if request.param == "sqlite":
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        shutil.copy(request.getfixturevalue("sqlite_template"), data_dir / "kb.sqlite3")
        app = make_app(tmp_path, None)
    else:
        app = make_app(tmp_path, request.getfixturevalue("postgres_schema"))
        _truncate_postgres(app)
    register_insights(app)
    with app.app_context():
        report = load_demo()
        assert not report.rejected, report.rejected
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def demo_client(demo_app: Flask) -> FlaskClient:
    return demo_app.test_client()


@pytest.fixture
def demo_ids(demo_app: Flask) -> dict[str, int]:
    """Map each demo campaign's external_id to its database id."""
    with demo_app.app_context():
        rows = db.session.execute(sa.select(Campaign.external_id, Campaign.id)).all()
        return {str(external_id): campaign_id for external_id, campaign_id in rows}
