"""PostgreSQL: the backup is a ``pg_dump --format=custom`` archive, restored in one transaction.

pg_restore turns the archive into SQL and psql runs it between our BEGIN and COMMIT, after
dropping the app's tables: a backup from before a migration (missing the newest tables, which
may reference campaigns) then restores too, and a dump that fails half-way changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from kb.backup.archive import (
    PG_DUMP_MAGIC,
    BackupError,
    BackupInfo,
    check_tables,
    expect_magic,
    known_revision,
)
from kb.extensions import db

CLIENT_HINT = (
    "请安装与服务器主版本一致的 PostgreSQL 客户端（Debian：apt-get install postgresql-client）"
)


def back_up(temp: Path) -> str:
    """Dump the live database into ``temp`` (a consistent snapshot); return its revision."""
    _run("pg_dump", "--format=custom", f"--file={temp}", *_target())
    revision, _ = check(temp)
    return revision


def check(path: Path) -> tuple[str, set[str]]:
    """Check a pg_dump archive's format, tables and schema revision; return both."""
    expect_magic(path, PG_DUMP_MAGIC, "PostgreSQL（pg_dump --format=custom）")
    listing = _run("pg_restore", "--list", str(path))
    tables = {
        parts[5]
        for line in listing.splitlines()
        if len(parts := line.split()) > 5 and parts[3:5] == ["TABLE", "public"]
    }
    check_tables(tables)
    script = _run("pg_restore", "--data-only", "--table=alembic_version", "--file=-", str(path))
    return known_revision(_copy_rows(script)), tables


def restore(source: Path, confirm: Callable[[BackupInfo], None]) -> None:
    """Replace the app's tables with those of the archive at ``source``, in one transaction."""
    revision, tables = check(source)
    confirm(BackupInfo(path=source, kind="postgresql", revision=revision))
    db.session.remove()
    db.engine.dispose()
    # The app's tables only (never other tables sharing the database), whatever their revision.
    ours = sorted(tables | set(db.metadata.tables))
    prelude = "BEGIN;\n" + "".join(f'DROP TABLE IF EXISTS public."{t}" CASCADE;\n' for t in ours)
    _pipe_into_psql(source, prelude)


def other_connections() -> int:
    """Count other sessions on the database (running workers, say)."""
    count = db.session.scalar(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    )
    db.session.commit()
    return int(count or 0)


def _pipe_into_psql(source: Path, prelude: str) -> None:
    """Run ``prelude``, the archive's SQL, then COMMIT only when pg_restore read all of it."""
    restore_tool, psql = _tool("pg_restore"), _tool("psql")
    with tempfile.TemporaryFile() as restore_errors, tempfile.TemporaryFile() as psql_errors:
        # Argument lists, no shell; the tools are the ones found on PATH.
        runner = subprocess.Popen(  # noqa: S603
            [psql, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", *_target()],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_errors,
            env=_env(),
        )
        reader = subprocess.Popen(  # noqa: S603
            [
                restore_tool,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--file=-",
                str(source),
            ],
            stdout=subprocess.PIPE,
            stderr=restore_errors,
        )
        sql_in, sql_out = runner.stdin, reader.stdout
        if sql_in is None or sql_out is None:  # never: both are PIPEs
            raise RuntimeError("subprocess pipes missing")
        read_all = psql_stopped = False
        try:
            sql_in.write(prelude.encode())
            shutil.copyfileobj(sql_out, sql_in)
            read_all = reader.wait() == 0
            if read_all:
                sql_in.write(b"COMMIT;\n")
            sql_in.flush()
        except BrokenPipeError:
            psql_stopped = True  # at an error (ON_ERROR_STOP); its message says which
        finally:
            reader.kill()
            reader.wait()
            sql_out.close()
            with contextlib.suppress(BrokenPipeError):
                sql_in.close()
            # Without our COMMIT, psql's session ends and PostgreSQL rolls everything back.
            ran = runner.wait() == 0
        if read_all and ran:
            return
        if not read_all and not psql_stopped:
            raise BackupError(f"pg_restore 失败：{_text(restore_errors)}；数据库未改变")
        raise BackupError(f"psql 失败：{_text(psql_errors)}；数据库未改变")


def _text(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", "replace").strip() or "无输出"


def _copy_rows(script: str) -> list[str]:
    """Return the rows of the COPY blocks in a plain-SQL dump."""
    rows: list[str] = []
    inside = False
    for line in script.splitlines():
        if line.startswith("COPY "):
            inside = True
        elif line == "\\.":
            inside = False
        elif inside:
            rows.append(line)
    return rows


def _target() -> list[str]:
    """Return the libpq connection arguments of the app's database (the password goes by env)."""
    url = db.engine.url
    conninfo = sa.engine.URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    ).render_as_string(hide_password=False)
    return ["--no-password", f"--dbname={conninfo}"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if db.engine.url.password:
        env["PGPASSWORD"] = db.engine.url.password  # not on the command line, where ps shows it
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"找不到 {name}：{CLIENT_HINT}")
    return path


def _run(name: str, *args: str) -> str:
    """Run a PostgreSQL client tool; return its output or raise BackupError with its message."""
    result = subprocess.run(  # noqa: S603  # an argument list, no shell; the tool found on PATH
        [_tool(name), *args], capture_output=True, text=True, env=_env(), check=False
    )
    if result.returncode != 0:
        message = result.stderr.strip() or f"exit code {result.returncode}"
        raise BackupError(f"{name} 失败：{message}")
    return result.stdout
