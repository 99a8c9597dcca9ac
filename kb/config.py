"""Settings: defaults in code, then ``KB_*`` environment variables, then the override dict."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from kb.access import SETTINGS as ACCESS_SETTINGS
from kb.insights.signals import signal_settings
from kb.web.security import SETTINGS as SECURITY_SETTINGS

# Every setting a deployment may change, with the default and what it does. The README documents
# each one as ``KB_<NAME>``; tests/test_docs.py checks that it does.
SETTINGS: dict[str, tuple[Any, str]] = {
    "DATA_DIR": (
        None,
        "Directory for all runtime data (SQLite file, indexes, models); default instance/.",
    ),
    "DATABASE_URL": (None, "SQLAlchemy URL of the database; default SQLite file in KB_DATA_DIR."),
    "SECRET_KEY": (None, "Session/CSRF signing key; default a random key kept in KB_DATA_DIR."),
    "TIMEZONE": ("Asia/Shanghai", "Time zone in which pages show times (IANA name)."),
    "SQLITE_BUSY_TIMEOUT_S": (
        20,
        "How long a SQLite write waits for another writer before answering 503 (retry later).",
    ),
    "MAX_CONTENT_LENGTH": (16 * 1024 * 1024, "Largest accepted request body in bytes."),
    "PER_PAGE": (20, "Campaigns per page on the list page and the API default."),
    "MAX_PER_PAGE": (100, "Largest page size the API accepts."),
    "AUTO_MIGRATE": (True, "Apply database migrations when the app starts."),
    "EMBEDDING_MODELS": ("e5,use", "Comma-separated embedding models: e5, use, or folder paths."),
    "MODELS_DIR": (None, "Where converted models are cached; default KB_DATA_DIR/models."),
    "TORCH_THREADS": (1, "Torch threads per process (one per worker avoids oversubscription)."),
    "INDEX_SYNC": (
        False,
        "Index inside the request after each write instead of in the background.",
    ),
    "INDEX_INTERVAL_S": (5, "Seconds between background passes over the index change log."),
    **SECURITY_SETTINGS,
    **ACCESS_SETTINGS,
}
SETTINGS.update(signal_settings())


def all_settings() -> dict[str, tuple[Any, str]]:
    """Return every setting, with the signal rules registered now (a rule may come after import)."""
    return {**SETTINGS, **signal_settings()}


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, ``KB_*`` environment variables and ``overrides``."""
    for name, (default, _) in all_settings().items():
        app.config[name] = default
    app.config.from_prefixed_env("KB")
    if overrides:
        app.config.update(overrides)

    data_dir = Path(app.config["DATA_DIR"] or app.instance_path).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    app.config["DATA_DIR"] = str(data_dir)

    database_url = app.config["DATABASE_URL"] or f"sqlite:///{data_dir / 'kb.sqlite3'}"
    app.config["DATABASE_URL"] = database_url
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(database_url, app.config)

    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _persistent_secret(data_dir / "secret_key")

    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # DefaultJSONProvider attribute


def _engine_options(database_url: str, settings: Any) -> dict[str, Any]:
    if database_url.startswith("sqlite"):
        # The connection pragmas live in kb.database; a busy writer makes others wait, not fail.
        return {"connect_args": {"timeout": float(settings["SQLITE_BUSY_TIMEOUT_S"])}}
    return {"pool_pre_ping": True}


def _persistent_secret(path: Path) -> str:
    """Return the key stored at ``path``, creating it on first start so sessions survive restarts.

    The file appears whole or not at all (written beside it, then renamed), under a lock so that
    workers starting together agree on one key. An empty file (a full disk, an interrupted copy)
    signs nothing and would make every page fail: it is replaced by a new key.
    """
    key = _read_secret(path)
    if key:
        return key
    with (path.parent / ".secret_key.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        key = _read_secret(path)
        if key:
            return key
        if path.exists():
            logging.getLogger(__name__).warning("%s is empty: a new secret key is written", path)
        key = secrets.token_hex(32)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        return key


def _read_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""
