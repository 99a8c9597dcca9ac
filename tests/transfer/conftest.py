"""Fixtures of the import/export tests: the app with the transfer blueprints and command registered.

Registration is idempotent, so these tests keep working once ``create_app`` registers them itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kb.extensions import db
from kb.transfer import views as transfer
from kb.transfer.cli import import_command
from tests.conftest import make_app

DATA = Path(__file__).resolve().parents[1] / "data"


def register(app: Flask) -> Flask:
    """Register the import/export pages, API and command on ``app`` unless already there."""
    if "transfer" not in app.blueprints:
        app.register_blueprint(transfer.bp)
    if "import" not in app.cli.commands:
        app.cli.add_command(import_command)
    return app


@pytest.fixture
def app(app: Flask) -> Flask:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # The shared fixture empties the tables it knows; import jobs are emptied here.
        with app.app_context(), db.engine.begin() as connection:
            connection.exec_driver_sql("TRUNCATE import_job_row, import_job RESTART IDENTITY")
    return register(app)


@pytest.fixture
def fresh_app(tmp_path: Path, sqlite_template: Path) -> Iterator[Callable[[], Flask]]:
    """Make apps on new, empty SQLite databases (the other end of a round trip)."""
    made: list[Flask] = []

    def make() -> Flask:
        root = tmp_path / f"fresh{len(made)}"
        (root / "data").mkdir(parents=True)
        shutil.copy(sqlite_template, root / "data" / "kb.sqlite3")
        flask_app = register(make_app(root, None))
        made.append(flask_app)
        return flask_app

    yield make
    for flask_app in made:
        with flask_app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def sample() -> Callable[[str], Path]:
    """Return the path of a sample file in tests/data."""

    def path(name: str) -> Path:
        found = DATA / name
        assert found.is_file(), f"missing sample {name}: run tests/data/make_samples.py"
        return found

    return path


@pytest.fixture
def post_file() -> Callable[..., TestResponse]:
    """Post a file (and form fields) as multipart to a URL of the test client."""

    def post(client: FlaskClient, url: str, path: Path, **form: object) -> TestResponse:
        with path.open("rb") as handle:
            return client.post(
                url,
                data={"file": (handle, path.name), **form},
                content_type="multipart/form-data",
            )

    return post
