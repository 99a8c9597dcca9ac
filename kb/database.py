"""Database connection set-up, schema migration at start, and the write-transaction helper."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import flask_migrate
from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.orm import scoped_session
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from kb.extensions import db
from kb.validation import MAX_ID as MAX_ID  # defined with the input bounds; routes use it here
from kb.validation import InvalidInputError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class IdConverter(IntegerConverter):
    """``<int:…>`` in routes: a number larger than MAX_ID names nothing, so 404 before any query."""

    def to_python(self, value: str) -> Any:
        number = super().to_python(value)
        if number > MAX_ID:
            # Not a ValidationError: werkzeug would then answer 405 when another method's route
            # has the same path. Raised here, it is this route's 404 whatever the method.
            raise NotFound()
        return number


def form_id(text: str | None) -> int | None:
    """Return the id (or version, or page) typed in a form or query string; None if it can't be one.

    ASCII digits only, 1 to MAX_ID: "²" passes ``str.isdigit`` and fails ``int``, "١٢" is 12 to
    ``int``, and a number past MAX_ID would overflow the query (SQLite binds 64-bit integers,
    PostgreSQL's INTEGER holds 32 bits); each was a 500 for a typo.
    """
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def form_version(text: str | None) -> int | None:
    """Return the version an edit form says it started from (None: the form names none).

    Raise InvalidInputError when it names one no record can have (see form_id), rather than
    saving without the check that protects another editor's change.
    """
    if not (text or "").strip():
        return None
    version = form_id(text)
    if version is None:
        raise InvalidInputError({"version": "版本号无效，请刷新页面后重新编辑"})
    return version


def init_app(app: Flask) -> None:
    """Bind the database to ``app``, tune SQLite connections, and migrate if configured."""
    # Before any blueprint adds its routes: they pick their converter when they are added.
    app.url_map.converters["int"] = IdConverter
    db.init_app(app)
    from kb.extensions import migrate

    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _configure_sqlite(db.engine, float(app.config["SQLITE_BUSY_TIMEOUT_S"]))
        if app.config["AUTO_MIGRATE"]:
            upgrade_schema(Path(app.config["DATA_DIR"]))


def upgrade_schema(data_dir: Path) -> None:
    """Apply pending migrations; a file lock keeps workers that start together from racing."""
    with (data_dir / ".migrate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))


def _configure_sqlite(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would defeat BEGIN IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={int(busy_timeout_s * 1000)}",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # In WAL a deferred transaction that reads and then writes fails with SQLITE_BUSY at once,
        # whatever the timeout; write transactions therefore take the write lock up front.
        immediate = connection.get_execution_options().get("kb_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction() -> Iterator[scoped_session[Any]]:
    """Run the block in one write transaction: commit on success, roll back on any error.

    Inside ``batch_transaction`` the block is a savepoint instead: a failing write undoes only
    itself, and the batch commits (or rolls back) as a whole.
    """
    session = db.session
    if session.info.get(_BATCH):
        with session.begin_nested():
            yield session
        return
    if session().in_transaction():
        # End the read snapshot a view may have opened, so the write starts on fresh data.
        session.commit()
    session.connection(execution_options={"kb_write": True})
    try:
        yield session
        # What was written stays readable as written: expired on commit, it would be reloaded,
        # and a concurrent writer's newer row would be reported to this client as its own.
        current = session()
        current.expire_on_commit = False
        try:
            session.commit()
        finally:
            current.expire_on_commit = True
    except BaseException:
        session.rollback()
        raise


_BATCH = "kb_batch"


def in_batch() -> bool:
    """Say whether a ``batch_transaction`` is open (its writes are not committed yet)."""
    return bool(db.session.info.get(_BATCH))


@contextmanager
def batch_transaction() -> Iterator[scoped_session[Any]]:
    """Run many ``write_transaction`` blocks as one transaction, each in its own savepoint.

    Bulk imports use it so a batch of rows and its report commit together or not at all.
    """
    with write_transaction() as session:
        session.info[_BATCH] = True
        try:
            yield session
        finally:
            session.info.pop(_BATCH, None)
