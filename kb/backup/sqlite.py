"""SQLite: the backup is a database file, copied with SQLite's backup API and swapped in whole."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from kb.backup.archive import (
    SQLITE_MAGIC,
    BackupError,
    BackupInfo,
    check_tables,
    expect_magic,
    fsync,
    known_revision,
)
from kb.extensions import db


def live_file() -> Path:
    """Return the path of the app's SQLite database file."""
    database = db.engine.url.database
    if not database or database == ":memory:":
        raise BackupError("内存中的 SQLite 数据库无法备份或恢复")
    return Path(database).resolve()


def back_up(temp: Path) -> str:
    """Copy the live database into ``temp`` (a consistent snapshot); return its revision."""
    source = live_file()
    copy(source, temp)
    return check(temp)


def copy(source: Path, target: Path) -> None:
    """Copy a SQLite database with the backup API into a standalone file (no -wal beside it)."""
    if not source.is_file():
        raise BackupError(f"找不到数据库文件：{source}")
    expect_magic(source, SQLITE_MAGIC, "SQLite")
    try:
        # Read-only: a backup never changes the database it reads.
        with (
            closing(sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} 不是可用的 SQLite 数据库：{exc}") from exc


def check(path: Path) -> str:
    """Check a SQLite file's integrity, tables and schema revision; return the revision."""
    try:
        with closing(sqlite3.connect(path)) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(f"数据库文件已损坏（integrity_check：{'; '.join(problems[:3])}）")
            check_tables(
                {
                    row[0]
                    for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
            )
            versions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"不是可用的 SQLite 数据库：{exc}") from exc
    return known_revision(versions)


def restore(
    source: Path, temp: Path, confirm: Callable[[BackupInfo], None], *, keep_replaced: bool
) -> Path | None:
    """Check a copy of ``source`` in ``temp``, then swap it in for the live file atomically.

    Returns where the replaced file is kept (a hard link, no copy), if ``keep_replaced``.
    """
    live = live_file()
    copy(source.resolve(), temp)
    revision = check(temp)
    confirm(BackupInfo(path=source, kind="sqlite", revision=revision))
    fsync(temp)
    db.session.remove()
    db.engine.dispose()
    _close_wal(live)
    kept = None
    if keep_replaced and live.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = live.with_name(f"{live.name}.before-restore-{stamp}")
        try:
            os.link(live, kept)
        except OSError:
            kept = None  # a file system without hard links: nothing kept
    os.replace(temp, live)
    fsync(live.parent)
    return kept


def _close_wal(live: Path) -> None:
    """Fold the live database's WAL into it; refuse when another process still has it open.

    SQLite deletes the -wal file when the last connection closes; a -wal file that survives our
    close belongs to another connection, whose writes would go to the replaced file.
    """
    if not live.exists():
        return
    try:
        with closing(sqlite3.connect(live)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"无法打开当前数据库 {live}：{exc}") from exc
    if live.with_name(f"{live.name}-wal").exists():
        raise BackupError("当前数据库正被其他进程使用：请先停止应用（所有 worker）再恢复")
