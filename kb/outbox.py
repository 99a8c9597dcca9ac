"""The change feed's write side: entries become visible in id order; wake the indexer after commit.

Services (campaigns, imports) add an ``IndexOutbox`` entry in the write's own transaction and
call ``notify()`` after the commit; the search feature registers how it is woken and how it
answers "is this entry searchable here" (``on_notify``, ``on_indexed``). Platform-level so that
kb.campaigns need not import kb.searching, which sits above it.

Hosts follow the feed by a high-water mark (kb.searching.feed), which is only safe if an entry
can never become visible after a higher one. SQLite has one writer at a time, so ids commit in
order. On PostgreSQL two transactions may take ids 10 and 11 and commit 11 first: a reader
would pass 10 forever. So there the entries of a transaction are inserted last, just before its
commit, under a transaction-level advisory lock held through the commit. Everything else the
transaction writes is flushed before the lock is taken, so a holder never waits for a row lock
(no deadlock), and the lock is held for one INSERT and the commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from kb.extensions import db
from kb.models import IndexFeedState, IndexOutbox

_WAKE = "kb.outbox_wake"
_INDEXED = "kb.outbox_indexed"
# pg_advisory_xact_lock key of the feed's writers ("kbfeed" in ASCII, fits a bigint).
FEED_LOCK_KEY = 0x6B6266656564
_HELD = "kb_feed_held"
_APPENDING = "kb_feed_appending"


def on_notify(app: Flask, wake: Callable[[], None]) -> None:
    """Register what ``notify()`` calls in ``app`` (the indexer: drain now, or wake its thread)."""
    app.extensions[_WAKE] = wake


def notify() -> None:
    """Tell the indexer that the outbox has news (after a commit); nothing if none registered."""
    from kb.database import in_batch

    if in_batch():
        return  # not committed yet: the batch notifies once after its commit
    wake: Callable[[], None] | None = current_app.extensions.get(_WAKE)
    if wake is not None:
        wake()


# ---- what a write's answer tells its client --------------------------------------------------


def on_indexed(app: Flask, indexed: Callable[[int], bool]) -> None:
    """Register how to tell whether feed entry ``seq`` is searchable on this host."""
    app.extensions[_INDEXED] = indexed


def campaign_seq(campaign_id: int) -> int:
    """Return the feed sequence number a client waits for after writing this campaign.

    The campaign's newest entry (a later write's entry covers this one); once pruned, every live
    host has passed it, and the pruned mark stands in for it.
    """
    newest = db.session.scalar(
        sa.select(sa.func.max(IndexOutbox.id)).where(IndexOutbox.campaign_id == campaign_id)
    )
    return int(newest) if newest is not None else pruned_upto()


def campaigns_seq(campaign_ids: sa.Select[int | None]) -> int:
    """Return the feed entry to wait for after writing these campaigns (a job's, say)."""
    newest = db.session.scalar(
        sa.select(sa.func.max(IndexOutbox.id)).where(IndexOutbox.campaign_id.in_(campaign_ids))
    )
    return int(newest) if newest is not None else pruned_upto()


def pruned_upto() -> int:
    """Return the feed's pruned mark: every entry up to it is deleted (0 before any pruning)."""
    found = db.session.scalar(sa.select(IndexFeedState.pruned_upto).where(IndexFeedState.id == 1))
    return int(found or 0)


def is_indexed(seq: int) -> bool:
    """Say whether feed entry ``seq`` is searchable on this host (False if nobody can tell)."""
    check: Callable[[int], bool] | None = current_app.extensions.get(_INDEXED)
    return check(seq) if check is not None else False


def write_headers(seq: int) -> dict[str, str]:
    """Headers of a write's answer: the feed entry to wait for (``GET /api/v1/index/status``)."""
    return {"Index-Seq": str(seq)}


# ---- entries visible in id order on PostgreSQL -------------------------------------------------

_install_lock = threading.Lock()
_installed = False


def keep_feed_order() -> None:
    """Install the session hooks that insert feed entries last, under the feed lock (once)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        event.listen(Session, "before_flush", _hold_entries)
        event.listen(Session, "before_commit", _append_entries)
        event.listen(Session, "after_transaction_end", _forget_entries)
        _installed = True


def _is_postgres(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "postgresql"


def _hold_entries(session: Session, _context: Any, _instances: Any) -> None:
    """Keep new feed entries out of every flush but the commit's (PostgreSQL only)."""
    if session.info.get(_APPENDING) or not _is_postgres(session):
        return
    held = [obj for obj in session.new if isinstance(obj, IndexOutbox)]
    if held:
        for entry in held:
            session.expunge(entry)
        session.info.setdefault(_HELD, []).extend(held)


def _append_entries(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the entries wait for the real commit
    if not _is_postgres(session):
        return
    held: list[IndexOutbox] = session.info.pop(_HELD, [])
    # Entries added since the last flush: the commit's own flush comes after this hook.
    held += [obj for obj in session.new if isinstance(obj, IndexOutbox)]
    if not held:
        return
    for entry in held:
        if entry in session:
            session.expunge(entry)
    session.flush()  # everything else first, before the lock: its row locks are taken now
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(FEED_LOCK_KEY)))
    session.info[_APPENDING] = True
    try:
        session.add_all(held)
        session.flush()
    finally:
        session.info.pop(_APPENDING, None)


def _forget_entries(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        # Rolled back (a commit took them already): the entries go with the transaction.
        session.info.pop(_HELD, None)
