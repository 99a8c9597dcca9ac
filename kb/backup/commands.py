"""Back up and restore whichever database the app uses, and the ``flask`` commands that do it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from kb.backup import postgres, sqlite
from kb.backup.archive import (
    BackupError,
    BackupInfo,
    CampaignCount,
    count_campaigns,
    fsync,
    temp_file_beside,
)
from kb.database import upgrade_schema
from kb.extensions import db
from kb.searching import indexer


def backup_database(target: Path) -> BackupInfo:
    """Write a consistent backup of the live database to ``target`` (via a temp file, renamed)."""
    target = target.resolve()
    if not target.parent.is_dir():
        raise BackupError(f"目录不存在：{target.parent}")
    dialect = db.engine.dialect.name
    with temp_file_beside(target) as temp:
        if dialect == "sqlite":
            if sqlite.live_file() == target:
                raise BackupError("备份文件不能是数据库文件本身")
            revision = sqlite.back_up(temp)
        elif dialect == "postgresql":
            revision = postgres.back_up(temp)
        else:
            raise BackupError(f"不支持备份 {dialect} 数据库")
        fsync(temp)
        os.replace(temp, target)
    fsync(target.parent)
    return BackupInfo(path=target, kind=dialect, revision=revision)


def restore_database(
    source: Path, *, confirm: Callable[[BackupInfo], None], keep_replaced: bool = True
) -> Path | None:
    """Replace the live database with the backup at ``source``, then apply migrations.

    The backup is checked first (format, integrity, tables, a schema revision this code knows);
    a bad one raises BackupError and the live database is untouched. ``confirm`` is called after
    the check and before any change; it raises to cancel. The indexes are then stale: rebuild
    them (``kb.searching.indexer.rebuild``). With ``keep_replaced`` a replaced SQLite file is kept beside
    the new one; its path is returned.
    """
    dialect = db.engine.dialect.name
    kept: Path | None = None
    if dialect == "sqlite":
        with temp_file_beside(sqlite.live_file()) as temp:
            kept = sqlite.restore(source, temp, confirm, keep_replaced=keep_replaced)
    elif dialect == "postgresql":
        postgres.restore(source, confirm)
    else:
        raise BackupError(f"不支持恢复 {dialect} 数据库")
    upgrade_schema(Path(current_app.config["DATA_DIR"]))
    # This process's search indexes describe the old data (in-memory vectors included).
    current_app.extensions.pop("kb.indexes", None)
    return kept


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace PATH when it exists.")
@with_appcontext
def backup_command(path: Path, overwrite: bool) -> None:
    """Write a consistent backup of the database to PATH; the app may keep running."""
    if path.exists() and not overwrite:
        raise click.ClickException(f"{path} 已存在：换一个文件名，或加 --overwrite 覆盖它")
    counts = count_campaigns()
    try:
        info = backup_database(path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    size_mib = info.path.stat().st_size / 2**20
    click.echo(
        f"已备份 {info.kind} 数据库（{counts or '尚未建表'}，数据库版本 {info.revision}）"
        f"到 {info.path}（{size_mib:.1f} MiB）"
    )


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace a database that holds campaigns without asking.")
@with_appcontext
def restore_command(path: Path, yes: bool) -> None:
    """Replace the database with the backup at PATH, migrate it and rebuild the search indexes.

    Stop the app first. A database that holds campaigns is replaced only when confirmed at the
    prompt or with --yes.
    """
    before = count_campaigns()
    click.echo(f"恢复前：{before or '数据库为空（尚未建表）'}")

    def confirm(info: BackupInfo) -> None:
        click.echo(f"备份检查通过：{info.path}（{info.kind}，数据库版本 {info.revision}）")
        if yes or before is None or before.total == 0:
            return
        if not sys.stdin.isatty():
            raise click.ClickException(f"当前数据库中有 {before}，恢复会替换它们：确认请加 --yes")
        click.confirm(f"恢复将替换当前的 {before}，继续吗？", abort=True)

    try:
        kept = restore_database(
            path, confirm=confirm, keep_replaced=before is not None and before.total > 0
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    after = count_campaigns() or CampaignCount(live=0, trashed=0)
    click.echo(f"已从 {path} 恢复：{after}")
    if kept is not None:
        click.echo(f"原数据库保留为 {kept}（确认无误后可删除）")
    with click.progressbar(length=after.live, label="重建索引") as bar:
        indexed = indexer.rebuild(progress=bar.update)
    click.echo(f"已重建索引：{indexed} 个活动")
    others = postgres.other_connections() if db.engine.dialect.name == "postgresql" else 0
    if others:
        click.echo(f"注意：数据库还有 {others} 个其他连接：请重启应用，让它重新载入索引", err=True)
