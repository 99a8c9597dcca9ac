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
        "存放全部运行数据（SQLite 数据库文件、索引、模型）的目录；默认 instance/。",
    ),
    "DATABASE_URL": (None, "数据库的 SQLAlchemy 地址；默认用 KB_DATA_DIR 里的 SQLite 文件。"),
    "SECRET_KEY": (
        None,
        "登录会话和表单防伪（CSRF）的签名密钥；默认随机生成并保存在 KB_DATA_DIR。",
    ),
    "TIMEZONE": ("Asia/Shanghai", "页面显示时间所用的时区（IANA 名称，如 Asia/Shanghai）。"),
    "SQLITE_BUSY_TIMEOUT_S": (
        20,
        "SQLite 写入时等待其他写入完成的秒数，超时则回答 503（请稍后重试）。",
    ),
    "MAX_CONTENT_LENGTH": (16 * 1024 * 1024, "单个请求（如上传文件）的最大字节数。"),
    "PER_PAGE": (20, "活动列表每页显示的活动数，也是 API 的默认每页条数。"),
    "MAX_PER_PAGE": (100, "API 每页最多返回的条数。"),
    "AUTO_MIGRATE": (True, "服务启动时自动升级数据库结构（迁移）。"),
    "EMBEDDING_MODELS": (
        "e5,use",
        "语义搜索所用的嵌入模型，逗号分隔，每项写作 [名称=]模型[:权重]：e5、use 或 "
        "sentence-transformers 模型目录的路径；权重决定该模型在融合排序中的分量（默认 1）。",
    ),
    "MODELS_DIR": (None, "转换后的模型缓存目录；默认 KB_DATA_DIR/models。"),
    "TORCH_THREADS": (1, "每个进程的 Torch 线程数（每个工作进程 1 个，避免抢占 CPU）。"),
    "INDEX_SYNC": (
        False,
        "每次写入后在请求内立即更新搜索索引，而不是在后台更新。",
    ),
    "INDEX_INTERVAL_S": (5, "后台检查索引变更记录的间隔秒数。"),
    "HOST_ID": (
        None,
        "本机在变更同步中的编号；默认首次启动时生成并保存在 KB_DATA_DIR。",
    ),
    "INDEX_HOST_TIMEOUT_S": (
        86400,
        "一台主机超过这么多秒未出现，就不再为它保留变更记录（它回来后会自行补齐）。",
    ),
    "INDEX_CLAIM_S": (
        120,
        "一台主机认领向量计算任务的有效秒数，过期后其他主机可接手。",
    ),
    "ANN_MIN_ROWS": (
        100_000,
        "每个模型的段落数达到这个数时建立近似向量索引；少于这个数时逐条精确检索。",
    ),
    **SECURITY_SETTINGS,
    **ACCESS_SETTINGS,
    **OPS_SETTINGS,
    **LOG_SETTINGS,
}

# The admin's 设置 page shows these descriptions to a planner-admin, so they are in Chinese. The
# settings of other modules are described here (their modules keep the defaults) so that the whole
# table reads in one language; a setting missing here keeps its module's own description.
_DESCRIPTIONS_ZH: dict[str, str] = {
    "SESSION_COOKIE_SECURE": "只通过 HTTPS 发送登录 Cookie；由 TLS 反向代理提供服务时打开。",
    "TRUSTED_PROXIES": "应用前面可信的反向代理层数，信任其 X-Forwarded-For/-Proto 请求头。",
    "RATELIMIT_ENABLED": "启用下面的访问频率限制。",
    "RATELIMIT_STORAGE_URI": "频率计数存放处：memory://（每个进程各自计数）或 redis://127.0.0.1:6379。",
    "RATELIMIT_API": "同一客户端地址访问 /api/ 的频率上限。",
    "RATELIMIT_LOGIN": "同一客户端地址尝试登录的频率上限。",
    "RATELIMIT_LOGIN_ACCOUNT": "同一账号（不论从哪个地址）登录失败多少次后须等待。",
    "PUBLIC_READ": "允许未登录的访客阅读页面和调用只读 API（不能修改）。",
    "READY_MAX_INDEX_LAG_S": "索引变更记录中最早一条超过这么多秒未处理时，/readyz 回答 503。",
    "LOG_FORMAT": "日志格式：text（文本），或 json（每行一个 JSON 对象）。",
}
for _name, _zh in _DESCRIPTIONS_ZH.items():
    if _name in SETTINGS:
        SETTINGS[_name] = (SETTINGS[_name][0], _zh)
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
