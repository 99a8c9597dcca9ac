"""The app factory: settings precedence, the data directory, and a database that makes itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from kb import create_app
from kb.extensions import db
from tests.signed_in import SignedInClient


def test_defaults_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("KB_PER_PAGE", "7")
    monkeypatch.setenv("KB_MAX_PER_PAGE", "9")
    app = create_app({"MAX_PER_PAGE": 11})
    assert app.config["DATA_DIR"] == str(tmp_path / "from-env")
    assert app.config["PER_PAGE"] == 7  # parsed from the environment as JSON
    assert app.config["MAX_PER_PAGE"] == 11  # the override dict wins
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024  # default


def test_fresh_data_dir_gets_a_migrated_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "dir"
    app = create_app({"DATA_DIR": str(data_dir)})
    assert (data_dir / "kb.sqlite3").exists()
    with app.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {
            "campaign",
            "metric",
            "reward",
            "hypothesis",
            "document",
            "alembic_version",
        } <= tables
        journal = db.session.execute(sa.text("PRAGMA journal_mode")).scalar()
        assert journal == "wal"
        db.engine.dispose()
    # Nobody is signed in: the list page asks for a sign-in; signed in, it shows.
    assert app.test_client().get("/campaigns").headers["Location"].startswith("/login")
    assert SignedInClient(app, app.response_class).get("/campaigns").status_code == 200


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = create_app({"DATA_DIR": str(tmp_path)}).config["SECRET_KEY"]
    second = create_app({"DATA_DIR": str(tmp_path)}).config["SECRET_KEY"]
    assert first == second
    assert len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_an_empty_secret_file_is_replaced_not_a_500(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("\n")
    app = create_app({"DATA_DIR": str(tmp_path)})
    key = app.config["SECRET_KEY"]
    assert len(key) == 64
    assert (tmp_path / "secret_key").read_text() == key
    assert app.test_client().get("/login").status_code == 200
    assert create_app({"DATA_DIR": str(tmp_path)}).config["SECRET_KEY"] == key


def test_database_url_points_elsewhere(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.db"
    app = create_app({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": f"sqlite:///{other}"})
    assert other.exists()
    assert not (tmp_path / "data" / "kb.sqlite3").exists()
    with app.app_context():
        db.engine.dispose()
