"""Following the change feed: this host's identity and mark, embedding claims, pruning.

The database holds one ordered feed of changes (``IndexOutbox``: ids never repeat and become
visible in order, kb.outbox). Every host keeps its own keyword index in its ``KB_DATA_DIR`` and
applies the entries above its own mark, kept in the index directory (the truth about the files)
and copied to ``IndexHost`` (so the others know what to keep for it). Embeddings are computed once
for all hosts: a host claims entries through the database, stores the vectors, and everyone
loads them. Entries every live host has passed, with their embeddings stored, are deleted; a host
whose mark is below the pruned mark (away too long, or new) catches up from the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import scoped_session

from kb.database import write_transaction
from kb.extensions import db
from kb.models import Campaign, Document, IndexFeedState, IndexHost, IndexOutbox, utcnow

# pg_advisory_xact_lock key of embedding claims ("kbclaim"): claimants take turns (a claim is a
# few milliseconds), so two hosts never claim two entries of one campaign at once.
CLAIM_LOCK_KEY = 0x6B62636C61696D
# Entries looked at per claim: the smallest campaigns among them go first.
CLAIM_WINDOW = 64
# A campaign waiting this long for its embeddings goes before smaller ones.
STARVED_S = 120.0
HOST_ID_FILE = "host_id"
MARK_FILE = "keyword.seq"
_HOST_ID = re.compile(r"[^A-Za-z0-9._:-]+")


def host_id() -> str:
    """Return this host's stable id: ``KB_HOST_ID``, else the one kept in ``KB_DATA_DIR``.

    The kept id is made once from the host name and the data directory, so a host keeps its
    mark across restarts and two data directories on one machine are two hosts.
    """
    app = current_app
    configured = str(app.config.get("HOST_ID") or "").strip()
    if configured:
        return _HOST_ID.sub("-", configured)[:100]
    cached: str | None = app.extensions.get("kb.host_id")
    if cached is not None:
        return cached
    data_dir = Path(app.config["DATA_DIR"])
    path = data_dir / HOST_ID_FILE
    try:
        found = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        found = ""
    if not found:
        digest = hashlib.sha1(str(data_dir).encode(), usedforsecurity=False).hexdigest()[:8]
        found = f"{_HOST_ID.sub('-', socket.gethostname())[:80]}-{digest}"
        _write_atomically(path, found + "\n")
    app.extensions["kb.host_id"] = found[:100]
    return found[:100]


# ---- this host's mark ------------------------------------------------------------------------


def read_mark(index_dir: Path) -> int | None:
    """Return the last feed entry the keyword index in ``index_dir`` has applied, or None."""
    try:
        return int(json.loads((index_dir / MARK_FILE).read_text(encoding="utf-8"))["seq"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_mark(index_dir: Path, seq: int) -> None:
    """Record, after the index committed them, that entries up to ``seq`` are applied."""
    _write_atomically(index_dir / MARK_FILE, json.dumps({"seq": seq}))
    _upsert_host(last_seq=seq)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def _upsert_host(**values: object) -> None:
    now = utcnow()
    row = {"host_id": host_id(), "last_seq": 0, "seen_at": now, **values}
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(IndexHost)
    update = {"seen_at": now, **values}
    with write_transaction() as session:
        session.execute(
            insert.values(**row).on_conflict_do_update(
                index_elements=[IndexHost.host_id], set_=update
            )
        )


def heartbeat() -> None:
    """Say this host is alive (its mark holds back pruning while it is)."""
    _upsert_host()


def record_error(message: str) -> None:
    """Keep the last indexing error of this host for the status endpoint."""
    _upsert_host(last_error=message[:2000], error_at=utcnow())


def register_catch_up() -> int:
    """Start catching up from the database: return the feed head the database now covers.

    The host's kept mark becomes that head in the same transaction that reads it, with pruning
    locked out (the state row), so no entry above it can be pruned before the host has it.
    """
    with write_transaction() as session:
        _lock_state(session)
        head = int(session.scalar(sa.select(sa.func.max(IndexOutbox.id))) or 0)
        pruned = int(session.scalar(sa.select(IndexFeedState.pruned_upto)) or 0)
    seq = max(head, pruned)
    _upsert_host(last_seq=seq)
    return seq


def _lock_state(session: scoped_session[Any]) -> None:
    query = sa.select(IndexFeedState.id).where(IndexFeedState.id == 1)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    if session.scalar(query) is None:
        session.add(IndexFeedState(id=1, pruned_upto=0))
        session.flush()


def entries_after(seq: int, limit: int) -> list[tuple[int, int]]:
    """Return up to ``limit`` (entry id, campaign id) above ``seq``, oldest first."""
    rows = db.session.execute(
        sa.select(IndexOutbox.id, IndexOutbox.campaign_id)
        .where(IndexOutbox.id > seq)
        .order_by(IndexOutbox.id)
        .limit(limit)
    ).all()
    db.session.commit()
    return [(int(entry), int(campaign)) for entry, campaign in rows]


def keyword_seq() -> int:
    """Return the last entry this host's keyword index has applied (0 before its first)."""
    return read_mark(Path(current_app.config["DATA_DIR"]) / "index") or 0


def is_searchable(seq: int) -> bool:
    """Say whether entry ``seq`` is in this host's keyword index and its vectors are stored."""
    return keyword_seq() >= seq and embedded_upto() >= seq


def head() -> int:
    """Return the newest entry's id (the pruned mark when the feed is empty)."""
    newest = db.session.scalar(sa.select(sa.func.max(IndexOutbox.id)))
    pruned = db.session.scalar(sa.select(IndexFeedState.pruned_upto))
    return max(int(newest or 0), int(pruned or 0))


# ---- embeddings, once for all hosts -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmbeddingClaim:
    """Entries this host claimed: their campaigns' embeddings are its to compute until ``until``."""

    entry_ids: tuple[int, ...]
    campaign_ids: tuple[int, ...]
    until: datetime


def claim_embeddings(max_campaigns: int) -> EmbeddingClaim | None:
    """Claim the oldest unclaimed entries waiting for embeddings, for up to ``max_campaigns``.

    A campaign another host holds a live claim on is skipped (its newer entries wait for that
    claim to end). On PostgreSQL the candidates are locked ``FOR UPDATE SKIP LOCKED``; claimants
    take turns through an advisory lock; SQLite's write transaction serializes them anyway.
    """
    now = utcnow()
    until = now + timedelta(seconds=float(current_app.config["INDEX_CLAIM_S"]))
    me = host_id()
    claimable = sa.and_(
        IndexOutbox.embedded_at.is_(None),
        sa.or_(IndexOutbox.claimed_until.is_(None), IndexOutbox.claimed_until <= now),
    )
    # A read first: most rounds find nothing, and a write transaction would take SQLite's lock.
    waiting = db.session.scalar(sa.select(IndexOutbox.id).where(claimable).limit(1))
    db.session.commit()
    if waiting is None:
        return None
    with write_transaction() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
        held = (
            sa.select(IndexOutbox.campaign_id)
            .where(IndexOutbox.embedded_at.is_(None), IndexOutbox.claimed_until > now)
            .scalar_subquery()
        )
        query = (
            sa.select(IndexOutbox.id, IndexOutbox.campaign_id, IndexOutbox.created_at)
            .where(
                IndexOutbox.embedded_at.is_(None),
                sa.or_(IndexOutbox.claimed_until.is_(None), IndexOutbox.claimed_until <= now),
                IndexOutbox.campaign_id.not_in(held),
            )
            .order_by(IndexOutbox.id)
            .limit(CLAIM_WINDOW)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        candidates = _fair_order(
            session, [(int(e), int(c), t) for e, c, t in session.execute(query)], now
        )
        campaigns = candidates[:max_campaigns]
        if not campaigns:
            return None
        # Every waiting entry of those campaigns: one embedding run covers them all.
        pending = sa.and_(
            IndexOutbox.campaign_id.in_(campaigns),
            IndexOutbox.embedded_at.is_(None),
            sa.or_(IndexOutbox.claimed_until.is_(None), IndexOutbox.claimed_until <= now),
        )
        entries = [int(e) for e in session.scalars(sa.select(IndexOutbox.id).where(pending))]
        session.execute(
            sa.update(IndexOutbox)
            .where(IndexOutbox.id.in_(entries))
            .values(claimed_by=me, claimed_until=until)
            .execution_options(synchronize_session=False)
        )
    return EmbeddingClaim(tuple(entries), tuple(campaigns), until)


def _fair_order(
    session: scoped_session[Any], entries: list[tuple[int, int, datetime]], now: datetime
) -> list[int]:
    """Order the candidates' campaigns smallest text first, a long-waiting one before all.

    A huge campaign then never holds back the small writes queued behind it, and it is not
    starved by them either once it has waited ``STARVED_S``.
    """
    first_seen: dict[int, datetime] = {}
    for _, campaign_id, created_at in entries:
        first_seen.setdefault(int(campaign_id), created_at)
    if not first_seen:
        return []
    text_columns = (
        Campaign.title, Campaign.goal, Campaign.summary, Campaign.went_well,
        Campaign.problems, Campaign.lessons, Campaign.recommendations,
    )  # fmt: skip
    documents = (
        sa.select(sa.func.coalesce(sa.func.sum(sa.func.length(Document.body)), 0))
        .where(Document.campaign_id == Campaign.id)
        .scalar_subquery()
    )
    size = sum((sa.func.coalesce(sa.func.length(c), 0) for c in text_columns), documents)
    sizes = {
        int(campaign_id): int(length or 0)
        for campaign_id, length in session.execute(
            sa.select(Campaign.id, size).where(Campaign.id.in_(first_seen))
        )
    }

    def key(campaign_id: int) -> tuple[bool, int, int]:
        starved = now - first_seen[campaign_id] > timedelta(seconds=STARVED_S)
        # A campaign gone (purged) costs nothing: its entries only drop its vectors.
        return (not starved, int(sizes.get(campaign_id, 0)), campaign_id)

    return sorted(first_seen, key=key)


def finish_embeddings(claim: EmbeddingClaim) -> None:
    """Mark the claimed entries' embeddings as stored (only while the claim is still ours)."""
    with write_transaction() as session:
        session.execute(
            sa.update(IndexOutbox)
            .where(IndexOutbox.id.in_(claim.entry_ids), IndexOutbox.claimed_by == host_id())
            .values(embedded_at=utcnow(), claimed_until=None)
            .execution_options(synchronize_session=False)
        )


def release_embeddings(claim: EmbeddingClaim, retry_after_s: float) -> None:
    """Give the claim back after a failure: anyone may retry it after ``retry_after_s``."""
    with write_transaction() as session:
        session.execute(
            sa.update(IndexOutbox)
            .where(IndexOutbox.id.in_(claim.entry_ids), IndexOutbox.claimed_by == host_id())
            .values(claimed_until=utcnow() + timedelta(seconds=retry_after_s))
            .execution_options(synchronize_session=False)
        )


def embedded_upto() -> int:
    """Return the feed id up to which every entry's embeddings are stored (all hosts)."""
    waiting = db.session.scalar(
        sa.select(sa.func.min(IndexOutbox.id)).where(IndexOutbox.embedded_at.is_(None))
    )
    return head() if waiting is None else int(waiting) - 1


# ---- pruning -----------------------------------------------------------------------------------


def live_hosts_since() -> datetime:
    """Hosts seen after this moment are live: their marks hold back pruning."""
    return utcnow() - timedelta(seconds=float(current_app.config["INDEX_HOST_TIMEOUT_S"]))


def prune() -> int:
    """Delete the entries every live host has applied and whose embeddings are stored.

    Return the number deleted. A host away longer than ``KB_INDEX_HOST_TIMEOUT_S`` no longer
    holds entries back; when it returns, its mark is below the pruned mark and it catches up
    from the database.
    """
    with write_transaction() as session:
        _lock_state(session)
        lowest_mark = session.scalar(
            sa.select(sa.func.min(IndexHost.last_seq)).where(IndexHost.seen_at > live_hosts_since())
        )
        if lowest_mark is None:
            return 0
        waiting = session.scalar(
            sa.select(sa.func.min(IndexOutbox.id)).where(IndexOutbox.embedded_at.is_(None))
        )
        cut = int(lowest_mark) if waiting is None else min(int(lowest_mark), int(waiting) - 1)
        pruned = int(session.scalar(sa.select(IndexFeedState.pruned_upto)) or 0)
        if cut <= pruned:
            return 0
        result = session.execute(
            sa.delete(IndexOutbox)
            .where(IndexOutbox.id <= cut)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            sa.update(IndexFeedState).where(IndexFeedState.id == 1).values(pruned_upto=cut)
        )
    return int(getattr(result, "rowcount", 0) or 0)
