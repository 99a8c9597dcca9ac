"""Settings: defaults in code, then ``KB_*`` environment variables, then the override dict."""

from __future__ import annotations

import fcntl
import logging
import math
import os
import secrets
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from flask import Flask
from limits import parse_many

from kb.access import SETTINGS as ACCESS_SETTINGS
from kb.insights.signals import signal_settings
from kb.logs import FORMATS as LOG_FORMATS
from kb.logs import SETTINGS as LOG_SETTINGS
from kb.ops import SETTINGS as OPS_SETTINGS
from kb.web.security import SETTINGS as SECURITY_SETTINGS
from search.embedder import parse_model_specs

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
    "EMBEDDING_MODELS": (
        "e5,use",
        "Comma-separated embedding models, each [name=]model[:weight]: e5, use or the path of a "
        "sentence-transformers folder; weight scales the model in fusion (default 1).",
    ),
    "MODELS_DIR": (None, "Where converted models are cached; default KB_DATA_DIR/models."),
    "TORCH_THREADS": (1, "Torch threads per process (one per worker avoids oversubscription)."),
    "INDEX_SYNC": (
        False,
        "Index inside the request after each write instead of in the background.",
    ),
    "INDEX_INTERVAL_S": (5, "Seconds between background passes over the index change log."),
    "HOST_ID": (
        None,
        "This host's id in the change feed; default made once and kept in KB_DATA_DIR.",
    ),
    "INDEX_HOST_TIMEOUT_S": (
        86400,
        "A host not seen this long stops holding back feed pruning (it catches up when back).",
    ),
    "INDEX_CLAIM_S": (
        120,
        "How long a host's claim on embedding work lasts before others take it.",
    ),
    "ANN_MIN_ROWS": (
        100_000,
        "Passages per model from which a host builds an approximate vector index; fewer are "
        "searched exactly.",
    ),
    **SECURITY_SETTINGS,
    **ACCESS_SETTINGS,
    **OPS_SETTINGS,
    **LOG_SETTINGS,
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
    validate(app.config)

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


class SettingsError(ValueError):
    """Settings the app cannot run with: one line per variable, naming it and what is wrong."""


# Counts, where a fraction means nothing; other numeric settings (seconds, %) take any number.
_WHOLE_NUMBERS = frozenset(
    {
        "PER_PAGE",
        "MAX_PER_PAGE",
        "MAX_CONTENT_LENGTH",
        "TORCH_THREADS",
        "TRUSTED_PROXIES",
        "ANN_MIN_ROWS",
    }
)
_AT_LEAST_ONE = frozenset({"PER_PAGE", "MAX_PER_PAGE", "MAX_CONTENT_LENGTH", "TORCH_THREADS"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_DATABASES = ("sqlite", "postgresql")


def validate(config: dict[str, Any]) -> None:
    """Check and normalise every setting in ``config`` by its default's type, or raise.

    Runs at start, so a wrong value stops the app with a message naming the variable instead of
    a 500 on the first page that reads it. Raises SettingsError listing every wrong setting.
    """
    problems = []
    for name, (default, _) in all_settings().items():
        value = config.get(name, default)
        try:
            config[name] = _checked(name, value, default)
        except ValueError as exc:
            problems.append(f"KB_{name}{_shown(name, value)}: {exc}")
    if problems:
        raise SettingsError("设置有误，应用未启动：\n" + "\n".join(problems))


def _shown(name: str, value: Any) -> str:
    """Return ``=value`` for the message, never a key or a database password (it is logged)."""
    if name == "SECRET_KEY":
        return ""
    if name in ("DATABASE_URL", "RATELIMIT_STORAGE_URI") and isinstance(value, str):
        try:
            return "=" + sa.engine.make_url(value).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "" if "@" in value else f"={value}"
    return f"={value}"


def _checked(name: str, value: Any, default: Any) -> Any:
    """Return ``value`` as the type of ``default`` (and the setting's own rule), or raise."""
    if isinstance(default, bool):
        value = _boolean(value)
    elif isinstance(default, int | float):
        value = _number(name, value, whole=name in _WHOLE_NUMBERS)
    elif value is not None or isinstance(default, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # KB_* values are read as JSON: KB_SECRET_KEY=1234 is text
        if not isinstance(value, str | os.PathLike):
            raise ValueError("须为文本")
    rule = _RULES.get(name)
    if rule is not None and value is not None:
        rule(str(value))
    return value


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("须为 true 或 false")


def _number(name: str, value: Any, *, whole: bool) -> int | float:
    kind = "整数" if whole else "数字"
    minimum = 1 if name in _AT_LEAST_ONE else 0
    number: int | float
    if isinstance(value, bool):
        raise ValueError(f"须为{kind}，不是 true/false")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"须为{kind}") from None
    else:
        raise ValueError(f"须为{kind}")
    if not math.isfinite(number):
        raise ValueError(f"须为{kind}")
    if whole and number != int(number):
        raise ValueError("须为整数，不能带小数")
    if number < minimum:
        raise ValueError(f"须不小于 {minimum}")
    return int(number) if number == int(number) else number


def _timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("不是已知的时区（IANA 名称，如 Asia/Shanghai）") from None


def _database_url(value: str) -> None:
    try:
        backend = sa.engine.make_url(value).get_backend_name()
    except sa.exc.ArgumentError:
        raise ValueError("不是数据库地址（如 postgresql+psycopg://用户@主机/库名）") from None
    if backend not in _DATABASES:
        raise ValueError(
            f"不支持的数据库“{backend}”：只支持 sqlite 与 postgresql（如 postgresql+psycopg://…）"
        )


def _rate_limit(value: str) -> None:
    try:
        parse_many(value)
    except ValueError:
        raise ValueError("不是有效的限流写法（如 300 per minute 或 5 per 15 minutes）") from None


def _embedding_models(value: str) -> None:
    # "fake": the tests' hashing stand-in for a model (kb.searching.indexer).
    if value.strip() != "fake":
        parse_model_specs(value)  # its ValueError names the entry and the fault, in Chinese


def _log_format(value: str) -> None:
    if value not in LOG_FORMATS:
        raise ValueError("须为 text 或 json")


_RULES = {
    "EMBEDDING_MODELS": _embedding_models,
    "LOG_FORMAT": _log_format,
    "TIMEZONE": _timezone,
    "DATABASE_URL": _database_url,
    "RATELIMIT_API": _rate_limit,
    "RATELIMIT_LOGIN": _rate_limit,
    "RATELIMIT_LOGIN_ACCOUNT": _rate_limit,
}


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
