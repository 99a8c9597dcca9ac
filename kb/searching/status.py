"""How far this host's indexes are behind the database: for ``GET /api/v1/index/status`` and pages.

A client that wrote something gets the write's feed entry (``index_seq``) and polls the status
until ``keyword_seq >= index_seq`` (keyword search finds it here) and ``vector_seq >= index_seq``
(search by meaning does too). Every host's id and mark and the indexer's last error (which can
name paths and servers) are details for admins; everyone else gets the sequence numbers, the
lag and the counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError

from kb import outbox
from kb.campaigns.serialize import Out
from kb.extensions import db
from kb.models import IndexHost, IndexOutbox, utcnow
from kb.searching import backfill, feed
from kb.searching.indexer import get_indexes


class IndexErrorOut(Out):
    """The last error of this host's indexer (it retries on its next round)."""

    message: str
    at: datetime


class IndexHostOut(Out):
    """A host following the change feed."""

    host: str
    keyword_seq: int = Field(description="该主机关键词索引已应用到的变更序号")
    seen_at: datetime
    live: bool = Field(description="最近仍在运行（其进度会阻止清理它尚未应用的变更）")


class IndexModelOut(Out):
    """An embedding model in force (KB_EMBEDDING_MODELS) and how much of the library it covers."""

    name: str
    dim: int = Field(description="向量维度")
    weight: float = Field(description="融合权重")
    embedded: int = Field(description="已有该模型向量的在库活动数")
    live: int = Field(description="在库活动数")
    coverage_pct: float = Field(description="向量覆盖率（%）")
    status: Literal["serving", "filling"] = Field(
        description="serving：参与语义搜索；filling：后台补算中，补齐前不参与搜索"
    )


class KeywordBuildOut(Out):
    """A rebuild of this host's keyword index under way (searches use the old one meanwhile)."""

    added: int = Field(description="已写入新索引的活动数")
    total: int | None = Field(description="要写入的活动总数（未知时为 null）")
    started_at: datetime


class IndexStatusOut(Out):
    """This host's index state against the change feed of the database."""

    host: str = Field(description="本主机的标识（KB_HOST_ID）")
    head_seq: int = Field(description="变更序列的最新序号")
    keyword_seq: int = Field(description="本主机关键词索引已应用到的序号")
    vector_seq: int = Field(description="到此序号为止的向量均已计算，并已被本进程载入")
    lag_entries: int = Field(description="本主机关键词索引尚未应用的变更条数")
    lag_s: float = Field(description="其中最早一条已等待的秒数（无则为 0）")
    embedding_queue: int = Field(description="等待计算向量的活动数（所有主机共享）")
    pruned_upto: int = Field(description="此序号及以前的变更已被清理")
    last_error: IndexErrorOut | None = Field(
        None, description="本主机索引的最近一次错误（仅管理员可见；无错误时为 null）"
    )
    hosts: list[IndexHostOut] | None = Field(
        None, description="跟随变更序列的每台主机及其进度（仅管理员可见）"
    )
    models: list[IndexModelOut] = Field(description="本主机配置的嵌入模型")
    keyword_build: KeywordBuildOut | None = Field(
        None,
        description="本主机关键词索引正在重建时的进度（期间搜索仍用旧索引；未在重建时为 null）",
    )


def lag_entries() -> int:
    """Return how many feed entries this host's keyword index has not applied yet."""
    count = db.session.scalar(
        sa.select(sa.func.count(IndexOutbox.id)).where(IndexOutbox.id > feed.keyword_seq())
    )
    return int(count or 0)


def pending_for_pages() -> int:
    """Return this host's unapplied entries for a page's 索引中 notice (0 if unknown)."""
    try:
        pending = lag_entries()
    except SQLAlchemyError:
        db.session.rollback()
        return 0  # the page shows its own database error; no notice about the index
    keyword = get_indexes().keyword
    if not keyword.is_usable:  # a first build: what it has still to write is not searchable
        build = keyword.build_progress()
        if build is not None and build.total is not None:
            pending = max(pending, build.total - build.added)
    return pending


def keyword_build() -> KeywordBuildOut | None:
    """Return the progress of a rebuild of this host's keyword index, if one runs."""
    build = get_indexes().keyword.build_progress()
    if build is None:
        return None
    return KeywordBuildOut(
        added=build.added,
        total=build.total,
        started_at=datetime.fromtimestamp(build.started_at, UTC),
    )


def index_status(*, admin: bool) -> IndexStatusOut:
    """Return this host's index state (and this process's vectors).

    ``admin`` adds every host's mark and the last error; without it they are left unset (and
    out of the answer, ``respond(..., exclude_unset=True)``).
    """
    keyword_seq = feed.keyword_seq()
    embedded = feed.embedded_upto()
    get_indexes().sync_vectors()  # what is stored up to ``embedded`` is now loaded here
    count, oldest = db.session.execute(
        sa.select(sa.func.count(IndexOutbox.id), sa.func.min(IndexOutbox.created_at)).where(
            IndexOutbox.id > keyword_seq
        )
    ).one()
    waiting = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(IndexOutbox.campaign_id))).where(
            IndexOutbox.embedded_at.is_(None)
        )
    )
    me = feed.host_id()
    now = utcnow()
    status = IndexStatusOut(
        host=me,
        head_seq=feed.head(),
        keyword_seq=keyword_seq,
        vector_seq=embedded,
        lag_entries=int(count or 0),
        lag_s=round(max(0.0, (now - oldest).total_seconds()), 1) if oldest is not None else 0.0,
        embedding_queue=int(waiting or 0),
        pruned_upto=outbox.pruned_upto(),
        models=[
            IndexModelOut(
                name=m.name,
                dim=m.dim,
                weight=m.weight,
                embedded=m.embedded,
                live=m.live,
                coverage_pct=m.coverage_pct,
                status=m.status,
            )
            for m in backfill.model_states()
        ],
        keyword_build=keyword_build(),
    )
    if admin:
        since = feed.live_hosts_since()
        hosts = list(db.session.scalars(sa.select(IndexHost).order_by(IndexHost.host_id)))
        mine = next((h for h in hosts if h.host_id == me), None)
        status.last_error = None
        if mine is not None and mine.last_error and mine.error_at is not None:
            status.last_error = IndexErrorOut(message=mine.last_error, at=mine.error_at)
        status.hosts = [
            IndexHostOut(
                host=h.host_id, keyword_seq=h.last_seq, seen_at=h.seen_at, live=h.seen_at > since
            )
            for h in hosts
        ]
    return status
