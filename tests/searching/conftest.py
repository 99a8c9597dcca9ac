"""Fixtures shared by the search tests of this folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.demo import load_demo
from kb.extensions import db
from kb.models import Campaign
from tests.conftest import make_app, release


@pytest.fixture(scope="module")
def demo(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FlaskClient, dict[int, str]]]:
    """A client of an app on the 55 demo campaigns and their external ids by id (read only)."""
    tmp_path = tmp_path_factory.mktemp("searching-demo")
    (tmp_path / "data").mkdir()
    shutil.copy(sqlite_template, tmp_path / "data" / "kb.sqlite3")
    app: Flask = make_app(tmp_path, None)
    with app.app_context():
        report = load_demo()
        assert not report.rejected, report.rejected
        keys = {c.id: str(c.external_id) for c in db.session.scalars(sa.select(Campaign))}
        db.session.remove()
    yield app.test_client(), keys
    release(app)
