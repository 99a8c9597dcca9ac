"""What backups of either database share: errors, checks of a backup file, safe file writes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from kb.database import MIGRATIONS_DIR
from kb.extensions import db
from kb.models import Campaign

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
REQUIRED_TABLES = ("campaign", "alembic_version")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why, for the operator."""


@dataclass(frozen=True)
class BackupInfo:
    """What a checked backup file holds: its format and schema revision."""

    path: Path
    kind: str  # "sqlite" or "postgresql"
    revision: str


@dataclass(frozen=True)
class CampaignCount:
    """How many campaigns a database holds: live ones and those in the trash."""

    live: int
    trashed: int

    @property
    def total(self) -> int:
        return self.live + self.trashed

    def __str__(self) -> str:
        return f"{self.live} 个活动（回收站 {self.trashed} 个）"


def count_campaigns() -> CampaignCount | None:
    """Count the campaigns in the app's database; None when it has no schema yet."""
    live = Campaign.deleted_at.is_(None)
    try:
        rows = db.session.execute(sa.select(live, sa.func.count(Campaign.id)).group_by(live)).all()
    except sa.exc.DatabaseError:
        db.session.rollback()
        return None
    db.session.commit()
    counts = {bool(is_live): int(n) for is_live, n in rows}
    return CampaignCount(live=counts.get(True, 0), trashed=counts.get(False, 0))


def expect_magic(path: Path, magic: bytes, kind: str) -> None:
    """Refuse a file that does not start like a ``kind`` backup, naming what it looks like."""
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head.startswith(magic):
        return
    if head.startswith(SQLITE_MAGIC):
        found = "一个 SQLite 备份"
    elif head.startswith(PG_DUMP_MAGIC):
        found = "一个 PostgreSQL 备份（pg_dump）"
    else:
        found = "无法识别的格式"
    raise BackupError(f"{path} 不是 {kind} 备份：它是{found}；当前数据库需要 {kind} 备份")


def check_tables(tables: set[str]) -> None:
    """Refuse a backup without the tables every Campaign KB database has."""
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise BackupError(f"不是活动知识库的数据库（缺少表 {', '.join(missing)}）")


def known_revision(versions: list[str]) -> str:
    """Return the one schema revision of a backup, refusing revisions this code does not have."""
    if len(versions) != 1:
        raise BackupError("备份中没有数据库版本（alembic_version 为空）")
    revision = versions[0].strip()
    known = {script.revision for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}
    if revision not in known:
        raise BackupError(f"备份的数据库版本 {revision} 比本程序新或未知：请先升级程序")
    return revision


@contextmanager
def temp_file_beside(target: Path) -> Iterator[Path]:
    """Yield a temp file in ``target``'s directory (so a rename is atomic); remove it after."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)
        Path(f"{temp}-journal").unlink(missing_ok=True)


def fsync(path: Path) -> None:
    """Flush a file or directory to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
