"""``GET /healthz`` (the process answers) and ``GET /readyz`` (this worker can serve).

They live at the root, where proxies and orchestrators look for them, outside /api/ so that a
probe every few seconds does not spend the API's per-address rate limit. The OpenAPI document
lists them all the same (kb/api/openapi.py ``ROOT_OPERATIONS``). Anyone may call them; only
an admin (signed in, or with an admin token) sees what each check found, since revisions and
error texts tell an outsider about the installation. A ``views`` module: it reads the search
feature's state and uses the API's declarations (the import-linter role of page modules).
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel

from kb.access import Access, current_principal, requires
from kb.accounts import services as accounts
from kb.api.operation import operation, respond
from kb.database import MIGRATIONS_DIR
from kb.extensions import csrf, db
from kb.models import IndexOutbox
from kb.searching import feed, indexer

bp = Blueprint("ops", __name__)
csrf.exempt(bp)

CheckName = Literal["database", "migrations", "models", "index_lag"]


class Health(BaseModel):
    """The process is alive and answers."""

    status: Literal["ok"]


class DatabaseCheck(BaseModel):
    """Whether a query reaches the database."""

    ok: bool
    error: str | None = None


class MigrationsCheck(BaseModel):
    """The database's schema revision against the code's newest (alembic head)."""

    ok: bool
    database: list[str]
    head: list[str]


class ModelsCheck(BaseModel):
    """Whether this worker's embedding models are loaded and warmed up."""

    ok: bool
    embedders: list[str]


class IndexLagCheck(BaseModel):
    """The index change log: entries waiting and the age of the oldest."""

    ok: bool
    pending: int | None
    oldest_age_s: float | None
    max_age_s: float


class ReadinessChecks(BaseModel):
    """Each readiness check with what it found (admins only)."""

    database: DatabaseCheck
    migrations: MigrationsCheck
    models: ModelsCheck
    index_lag: IndexLagCheck


class Readiness(BaseModel):
    """Ready or not, the checks that failed by name, and for admins what each check found."""

    status: Literal["ready", "not_ready"]
    failed: list[CheckName]
    checks: ReadinessChecks | None = None


@bp.get("/healthz")
@requires(Access.PUBLIC)
@operation(response=Health, returns="进程存活", operation_id="healthz")
def healthz() -> Response:
    """存活检查 (Liveness: the process answers).

    不查数据库与模型：只说明进程在响应。供反向代理或编排器判断是否重启进程。
    """
    return respond(Health(status="ok"))


@bp.get("/readyz")
@requires(Access.PUBLIC)
@operation(
    response=Readiness,
    returns="可以接收请求",
    answers={503: (Readiness, "尚未就绪：failed 列出未通过的检查")},
    operation_id="readyz",
)
def readyz() -> Response:
    """就绪检查 (Readiness: this worker can serve).

    检查数据库可达、迁移已应用到最新、本进程的嵌入模型已加载并预热、索引变更日志中最早一条
    未超过 KB_READY_MAX_INDEX_LAG_S 秒。匿名调用只得到是否就绪和未通过的检查名；管理员（登录
    或管理员令牌）另得到每项检查的详情。
    """
    checks = run_checks()
    failed: list[CheckName] = [
        name for name in ("database", "migrations", "models", "index_lag") if not _ok(checks, name)
    ]
    answer = Readiness(status="not_ready" if failed else "ready", failed=failed)
    if _caller_is_admin():
        answer.checks = checks
    return respond(answer, 503 if failed else 200, exclude_unset=True)


def _ok(checks: ReadinessChecks, name: CheckName) -> bool:
    found: bool = getattr(checks, name).ok
    return found


def run_checks() -> ReadinessChecks:
    """Run every readiness check of this worker."""
    max_age_s = float(current_app.config["READY_MAX_INDEX_LAG_S"])
    warmed = indexer.models_ready()
    models = ModelsCheck(
        ok=warmed, embedders=[e.name for e in indexer.get_indexes().embedders] if warmed else []
    )
    head = sorted(_head_revisions())
    try:
        with db.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            current = _database_revisions(connection)
            migrated = current == head
            pending, oldest = _outbox(connection) if migrated else (None, None)
    except sa.exc.SQLAlchemyError as exc:
        # The driver's own words (host, port, role) are for admins: readyz filters them.
        unreachable = IndexLagCheck(ok=False, pending=None, oldest_age_s=None, max_age_s=max_age_s)
        return ReadinessChecks(
            database=DatabaseCheck(ok=False, error=str(exc.__cause__ or exc).strip()[:500]),
            migrations=MigrationsCheck(ok=False, database=[], head=head),
            models=models,
            index_lag=unreachable,
        )
    age = None if oldest is None else max(0.0, time.time() - oldest.timestamp())
    return ReadinessChecks(
        database=DatabaseCheck(ok=True),
        migrations=MigrationsCheck(ok=migrated, database=current, head=head),
        models=models,
        index_lag=IndexLagCheck(
            ok=pending is not None and (age is None or age <= max_age_s),
            pending=pending,
            oldest_age_s=None if age is None else round(age, 1),
            max_age_s=max_age_s,
        ),
    )


@functools.cache
def _head_revisions() -> tuple[str, ...]:
    # The migration scripts change with the code only: read them once per process.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return tuple(ScriptDirectory.from_config(config).get_heads())


def _database_revisions(connection: sa.Connection) -> list[str]:
    # The table alembic keeps, read directly: alembic's MigrationContext logs two INFO lines
    # per call, noise in every probe's log.
    if not sa.inspect(connection).has_table("alembic_version"):
        return []
    return sorted(connection.scalars(sa.text("SELECT version_num FROM alembic_version")))


def _outbox(connection: sa.Connection) -> tuple[int, datetime | None]:
    # The entries this host's keyword index has not applied yet (the feed keeps the others
    # for the other hosts until all have passed them).
    count, oldest = connection.execute(
        sa.select(sa.func.count(IndexOutbox.id), sa.func.min(IndexOutbox.created_at)).where(
            IndexOutbox.id > feed.keyword_seq()
        )
    ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)  # stored in UTC (kb.models.UTCDateTime)
    return int(count), oldest


def _caller_is_admin() -> bool:
    principal = current_principal()
    if principal is not None:
        return principal.can("admin")
    # Outside /api/ the access check reads no token (kb/access.py): read an admin's here. A
    # missing or wrong token is no error for a probe: the answer is the anonymous one.
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return False
    try:
        token = accounts.find_token(secret.strip())
    except sa.exc.SQLAlchemyError:
        return False  # the database is down: readyz says so, to everyone alike
    return token is not None and accounts.role_rank(token.role) >= accounts.role_rank("admin")
