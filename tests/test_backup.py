"""Backup and restore: a round trip gives back every campaign and a rebuilt index; bad files refused.

The PostgreSQL round trip runs pg_dump and pg_restore against a database of its own (created and
dropped here), never the shared test database; it fails, not skips, without those tools.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient

from kb.backup import backup_command, restore_command
from kb.database import MIGRATIONS_DIR, upgrade_schema
from kb.extensions import db
from tests.conftest import POSTGRES_URL, make_app
from tests.factories import campaign_payload

TITLES = {
    "dragon-boat": "端午粽子礼盒复购活动",
    "qixi": "七夕鲜花直播带货",
    "school": "开学季文具拉新",
}


def register(app: Flask) -> Flask:
    """Register the backup commands on ``app`` unless ``create_app`` already did."""
    for command in (backup_command, restore_command):
        if command.name not in app.cli.commands:
            app.cli.add_command(command)
    return app


@pytest.fixture
def sqlite_app(tmp_path: Path, sqlite_template: Path) -> Iterator[Flask]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(sqlite_template, data_dir / "kb.sqlite3")
    app = register(make_app(tmp_path, None))
    yield app
    close(app)


@pytest.fixture
def postgres_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on a new PostgreSQL database of its own, dropped afterwards."""
    server = sa.engine.make_url(POSTGRES_URL)
    name = f"kb_backup_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is required for this test ({server.host}): {exc}")
    url = server.set(database=name).render_as_string(hide_password=False)
    app = register(make_app(tmp_path, url))
    yield app
    close(app)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def close(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def invoke(app: Flask, *args: str, stdin: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=stdin)


def create_campaigns(client: FlaskClient) -> dict[str, int]:
    """Create three campaigns, edit one and trash one; return their ids by external_id."""
    ids = {}
    for external_id, title in TITLES.items():
        response = client.post(
            "/api/v1/campaigns", json=campaign_payload(title=title, external_id=external_id)
        )
        assert response.status_code == 201, response.get_json()
        ids[external_id] = response.get_json()["id"]
    body = campaign_payload(
        title=TITLES["qixi"], external_id="qixi", lessons="主播口播优惠券码，核销率翻倍", version=1
    )
    assert client.put(f"/api/v1/campaigns/{ids['qixi']}", json=body).status_code == 200
    trashed = client.post(
        "/api/v1/campaigns",
        json=campaign_payload(title="冰淇淋快闪店（已删除）", external_id="gone"),
    ).get_json()["id"]
    assert client.delete(f"/api/v1/campaigns/{trashed}").status_code == 204
    ids["gone"] = trashed
    return ids


def snapshot(client: FlaskClient, ids: dict[str, int]) -> dict[str, Any]:
    """Return the API JSON of every live campaign and the list page."""
    state: dict[str, Any] = {
        key: client.get(f"/api/v1/campaigns/{cid}").get_json()
        for key, cid in ids.items()
        if key != "gone"
    }
    state["list"] = client.get("/api/v1/campaigns").get_json()
    return state


def histories(client: FlaskClient, ids: dict[str, int]) -> dict[str, Any]:
    """Return every campaign's versions (the trashed one's too) and each version's snapshot."""
    state = {}
    for key, cid in ids.items():
        versions = client.get(f"/api/v1/campaigns/{cid}/versions").get_json()["items"]
        state[key] = [
            client.get(f"/api/v1/campaigns/{cid}/versions/{v['version']}").get_json()
            for v in versions
        ]
    return state


def trashed_ids(app: Flask) -> list[int]:
    with app.app_context():
        from kb.models import Campaign

        found = db.session.scalars(
            sa.select(Campaign.id).where(Campaign.deleted_at.is_not(None))
        ).all()
        db.session.remove()
        return list(found)


def keyword_hits(client: FlaskClient, query: str) -> list[int]:
    response = client.get("/api/v1/search", query_string={"q": query, "mode": "keyword"})
    assert response.status_code == 200, response.get_json()
    return [result["id"] for result in response.get_json()["results"]]


def assert_restored(
    app: Flask, ids: dict[str, int], before: dict[str, Any], result: Result
) -> None:
    assert result.exit_code == 0, result.output
    client = app.test_client()
    assert snapshot(client, ids) == before
    assert before["qixi"]["version"] == 2
    assert before["qixi"]["documents"][0]["body"].startswith("## 分层")
    assert trashed_ids(app) == [ids["gone"]]
    # The index was rebuilt from the restored database.
    assert keyword_hits(client, "粽子") == [ids["dragon-boat"]]
    assert keyword_hits(client, "核销率翻倍")[0] == ids["qixi"]
    assert keyword_hits(client, "冰淇淋") == []
    assert "已重建索引：3 个活动" in result.output


def schema_revision(app: Flask) -> str:
    with app.app_context():
        revision = db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))
        db.session.remove()
        return str(revision)


def check_backup_from_before_the_last_migration(app: Flask, tmp_path: Path) -> None:
    """Back up at the previous schema revision, upgrade, restore: the upgrade is applied again.

    The newest tables (which may reference campaigns) exist live but not in the backup.
    """
    client = app.test_client()
    ids = create_campaigns(client)
    before = snapshot(client, ids)
    head = schema_revision(app)
    with app.app_context():
        flask_migrate.downgrade(directory=str(MIGRATIONS_DIR), revision="-1")
        db.session.remove()
    older = schema_revision(app)
    assert older != head
    backup = tmp_path / "older.backup"
    made = invoke(app, "backup", str(backup))
    assert made.exit_code == 0, made.output
    assert older in made.output
    with app.app_context():
        upgrade_schema(Path(app.config["DATA_DIR"]))
        db.session.remove()

    result = invoke(app, "restore", "--yes", str(backup))
    assert_restored(app, ids, before, result)
    assert schema_revision(app) == head


# SQLite ------------------------------------------------------------------------------------------


def wipe_sqlite(app: Flask) -> None:
    """Lose the database and the index, as a broken disk would."""
    close(app)
    data_dir = Path(app.config["DATA_DIR"])
    for path in data_dir.glob("kb.sqlite3*"):
        path.unlink()
    shutil.rmtree(data_dir / "index", ignore_errors=True)


def test_sqlite_round_trip(sqlite_app: Flask, tmp_path: Path) -> None:
    client = sqlite_app.test_client()
    ids = create_campaigns(client)
    before = snapshot(client, ids)
    before_history = histories(client, ids)
    assert [v["action"] for v in before_history["qixi"]] == ["update", "create"]
    backup = tmp_path / "kb-backup.sqlite3"

    made = invoke(sqlite_app, "backup", str(backup))
    assert made.exit_code == 0, made.output
    assert "3 个活动（回收站 1 个）" in made.output
    # One standalone file: no -wal beside it, nothing left over.
    assert sorted(p.name for p in tmp_path.glob("kb-backup*")) == ["kb-backup.sqlite3"]
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)

    wipe_sqlite(sqlite_app)
    result = invoke(sqlite_app, "restore", str(backup))  # an empty database: no question asked
    assert "恢复前：数据库为空" in result.output
    assert_restored(sqlite_app, ids, before, result)
    assert histories(sqlite_app.test_client(), ids) == before_history
    data_dir = Path(sqlite_app.config["DATA_DIR"])
    assert not list(data_dir.glob(".kb.sqlite3.*")), "temp files left behind"
    assert not list(data_dir.glob("kb.sqlite3.before-restore-*")), "an empty database kept"


def test_restore_replaces_later_changes_and_keeps_the_old_file(
    sqlite_app: Flask, tmp_path: Path
) -> None:
    client = sqlite_app.test_client()
    ids = create_campaigns(client)
    before = snapshot(client, ids)
    backup = tmp_path / "backup.sqlite3"
    assert invoke(sqlite_app, "backup", str(backup)).exit_code == 0
    later = client.post("/api/v1/campaigns", json=campaign_payload(external_id="later"))
    assert later.status_code == 201
    assert client.delete(f"/api/v1/campaigns/{ids['school']}").status_code == 204

    result = invoke(sqlite_app, "restore", "--yes", str(backup))
    assert "恢复前：3 个活动（回收站 2 个）" in result.output
    assert_restored(sqlite_app, ids, before, result)
    assert client.get(later.headers["Location"]).status_code == 404
    kept = list(Path(sqlite_app.config["DATA_DIR"]).glob("kb.sqlite3.before-restore-*"))
    assert len(kept) == 1
    assert str(kept[0]) in result.output
    with sqlite3.connect(kept[0]) as conn:
        assert conn.execute("SELECT count(*) FROM campaign").fetchone() == (5,)


def test_restore_asks_before_replacing_campaigns(sqlite_app: Flask, tmp_path: Path) -> None:
    client = sqlite_app.test_client()
    ids = create_campaigns(client)
    backup = tmp_path / "backup.sqlite3"
    assert invoke(sqlite_app, "backup", str(backup)).exit_code == 0
    client.post("/api/v1/campaigns", json=campaign_payload(external_id="later"))
    before = snapshot(client, ids)

    refused = invoke(sqlite_app, "restore", str(backup))
    assert refused.exit_code == 1
    assert "--yes" in refused.output
    assert snapshot(client, ids) == before
    assert client.get("/api/v1/campaigns").get_json()["total"] == 4


def test_backup_does_not_overwrite_without_asking(sqlite_app: Flask, tmp_path: Path) -> None:
    backup = tmp_path / "backup.sqlite3"
    backup.write_bytes(b"yesterday")
    refused = invoke(sqlite_app, "backup", str(backup))
    assert refused.exit_code == 1
    assert "--overwrite" in refused.output
    assert backup.read_bytes() == b"yesterday"
    assert invoke(sqlite_app, "backup", "--overwrite", str(backup)).exit_code == 0
    assert backup.read_bytes().startswith(b"SQLite format 3\x00")


def test_sqlite_backup_from_before_the_last_migration(sqlite_app: Flask, tmp_path: Path) -> None:
    check_backup_from_before_the_last_migration(sqlite_app, tmp_path)


def corrupt_pages(path: Path) -> None:
    """Keep the header page, overwrite every other page with noise."""
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    noise = secrets.token_bytes(len(data) - page_size)
    path.write_bytes(bytes(data[:page_size]) + noise)


def foreign_database(path: Path) -> None:
    path.unlink()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")


def newer_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")


BAD_BACKUPS: dict[str, tuple[Callable[[Path], None], str]] = {
    "text": (lambda p: p.write_text("not a backup", encoding="utf-8"), "不是 SQLite 备份"),
    "empty": (lambda p: p.write_bytes(b""), "不是 SQLite 备份"),
    "pg_dump": (lambda p: p.write_bytes(b"PGDMP\x01\x0e\x00" + bytes(64)), "PostgreSQL"),
    "corrupt pages": (corrupt_pages, "SQLite"),
    "foreign database": (foreign_database, "缺少表 campaign, alembic_version"),
    "newer schema": (newer_database, "ffffffffffff"),
}


@pytest.mark.parametrize("kind", sorted(BAD_BACKUPS))
def test_a_bad_backup_is_refused_and_the_live_database_untouched(
    sqlite_app: Flask, tmp_path: Path, kind: str
) -> None:
    client = sqlite_app.test_client()
    ids = create_campaigns(client)
    before = snapshot(client, ids)
    backup = tmp_path / "backup.sqlite3"
    assert invoke(sqlite_app, "backup", str(backup)).exit_code == 0
    spoil, message = BAD_BACKUPS[kind]
    spoil(backup)

    result = invoke(sqlite_app, "restore", "--yes", str(backup))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert snapshot(client, ids) == before
    assert keyword_hits(client, "粽子") == [ids["dragon-boat"]]
    data_dir = Path(sqlite_app.config["DATA_DIR"])
    assert not list(data_dir.glob(".kb.sqlite3.*")), "temp files left behind"
    assert not list(data_dir.glob("kb.sqlite3.before-restore-*"))


# PostgreSQL --------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_round_trip_through_pg_dump(postgres_app: Flask, tmp_path: Path) -> None:
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not on PATH: install postgresql-client")
    client = postgres_app.test_client()
    ids = create_campaigns(client)
    before = snapshot(client, ids)
    before_history = histories(client, ids)
    backup = tmp_path / "kb.dump"

    made = invoke(postgres_app, "backup", str(backup))
    assert made.exit_code == 0, made.output
    assert backup.read_bytes().startswith(b"PGDMP")

    # Half a dump is refused by the check; 90 % passes it and fails inside pg_restore's one
    # transaction. Either way nothing changes.
    for keep, checked in ((0.5, False), (0.9, True)):
        truncated = tmp_path / "truncated.dump"
        truncated.write_bytes(backup.read_bytes()[: int(backup.stat().st_size * keep)])
        failed = invoke(postgres_app, "restore", "--yes", str(truncated))
        assert failed.exit_code == 1, failed.output
        assert ("备份检查通过" in failed.output) == checked
        assert "pg_restore 失败" in failed.output
        assert snapshot(client, ids) == before

    refused = invoke(postgres_app, "restore", str(backup))
    assert refused.exit_code == 1
    assert "--yes" in refused.output

    close(postgres_app)
    with postgres_app.app_context(), db.engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    close(postgres_app)
    shutil.rmtree(Path(postgres_app.config["DATA_DIR"]) / "index", ignore_errors=True)

    result = invoke(postgres_app, "restore", str(backup))
    assert "恢复前：数据库为空" in result.output
    assert_restored(postgres_app, ids, before, result)
    assert histories(postgres_app.test_client(), ids) == before_history


@pytest.mark.postgres
def test_postgres_backup_from_before_the_last_migration(
    postgres_app: Flask, tmp_path: Path
) -> None:
    check_backup_from_before_the_last_migration(postgres_app, tmp_path)


@pytest.mark.postgres
def test_postgres_refuses_a_sqlite_backup(postgres_app: Flask, tmp_path: Path) -> None:
    backup = tmp_path / "kb.sqlite3"
    with sqlite3.connect(backup) as conn:
        conn.execute("CREATE TABLE campaign (id INTEGER)")
    result = invoke(postgres_app, "restore", "--yes", str(backup))
    assert result.exit_code == 1
    assert "SQLite" in result.output
