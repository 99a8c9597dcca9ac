"""Keep the search indexes in step with the database, which stays the only truth.

Every write adds an ``IndexOutbox`` row in its own transaction. The indexer drains those rows
after each write, at start and on a timer: it loads each campaign as it is now and upserts or
removes its entries. Draining is idempotent, so a failed index write or a crash between commit
and index is repaired by the next drain. One process drains at a time (a file lock), so several
gunicorn workers share one index safely; each keeps its own reader and in-memory vectors.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np
import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import selectinload

from kb.database import write_transaction
from kb.extensions import db
from kb.models import Campaign, CampaignVersion, IndexOutbox, PassageEmbedding
from kb.searching.documents import campaign_text
from search.documents import CampaignText, passages
from search.embedder import Embedder, FakeEmbedder, load_embedders
from search.keyword import KeywordIndex
from search.vector import VectorIndex

log = logging.getLogger(__name__)

BATCH = 100  # campaigns per drain step: bounds memory and the time the lock is held
ENCODE_BATCH = 32
# Campaigns embedded between two keyword catch-ups while draining: at most 96 passages each
# (search.documents.MAX_PASSAGES), so a slice takes seconds even on a CPU without AVX-512.
EMBED_SLICE = 4
Progress = Callable[[int], None]


class SearchIndexes:
    """This process's view of the indexes: the Whoosh index, the embedders, in-memory vectors."""

    def __init__(self, data_dir: Path, embedders: Sequence[Embedder]) -> None:
        self.data_dir = data_dir
        self.keyword = KeywordIndex(data_dir / "index" / "keyword")
        self.embedders = list(embedders)
        self.vectors = {e.name: VectorIndex(e.name, e.dim) for e in self.embedders}
        # The highest PassageEmbedding id loaded into memory: rows above it are news.
        self._loaded_upto = 0
        # The highest CampaignVersion id seen: trash and restore rows above it are news.
        self._history_upto = 0
        self._sync_lock = threading.Lock()

    def _apply_trash(self, after_id: int) -> None:
        if after_id == 0:
            return  # the first load reads live campaigns only
        moved = db.session.scalars(
            sa.select(CampaignVersion.campaign_id)
            .where(
                CampaignVersion.id > after_id,
                CampaignVersion.action.in_(("trash", "restore")),
            )
            .distinct()
        ).all()
        if moved:
            self._load_campaigns(moved)  # drops the trashed ones, reloads the restored ones

    def sync_vectors(self) -> None:
        """Load embeddings written since the last sync (by this or another process).

        Campaigns trashed or restored since then, by any process, are dropped or reloaded: their
        embeddings do not change, but their history gains a row (an id only ever grows).
        """
        with self._sync_lock:
            history_newest = db.session.scalar(sa.select(sa.func.max(CampaignVersion.id))) or 0
            if history_newest > self._history_upto:
                self._apply_trash(self._history_upto)
                self._history_upto = history_newest
            newest = db.session.scalar(sa.select(sa.func.max(PassageEmbedding.id))) or 0
            if newest <= self._loaded_upto:
                return
            changed = db.session.scalars(
                sa.select(PassageEmbedding.campaign_id)
                .where(PassageEmbedding.id > self._loaded_upto)
                .distinct()
            ).all()
            for start in range(0, len(changed), 500):
                self._load_campaigns(changed[start : start + 500])
            self._loaded_upto = newest

    def _load_campaigns(self, campaign_ids: Sequence[int]) -> None:
        rows = db.session.execute(
            sa.select(PassageEmbedding.campaign_id, PassageEmbedding.model, PassageEmbedding.vector)
            .join(Campaign, Campaign.id == PassageEmbedding.campaign_id)
            .where(PassageEmbedding.campaign_id.in_(campaign_ids), Campaign.deleted_at.is_(None))
            .order_by(PassageEmbedding.campaign_id, PassageEmbedding.position)
        ).all()
        grouped: dict[tuple[str, int], list[bytes]] = defaultdict(list)
        for campaign_id, model, vector in rows:
            grouped[(model, campaign_id)].append(vector)
        for name, index in self.vectors.items():
            for campaign_id in campaign_ids:
                blobs = grouped.get((name, campaign_id))
                if blobs:
                    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32)
                    index.replace(campaign_id, matrix.reshape(len(blobs), index.dim))
                else:
                    index.remove([campaign_id])


def get_indexes() -> SearchIndexes:
    """Return this process's indexes, creating them on first use."""
    app = current_app
    indexes: SearchIndexes | None = app.extensions.get("kb.indexes")
    if indexes is None:
        with _create_lock:
            indexes = app.extensions.get("kb.indexes")
            if indexes is None:
                indexes = SearchIndexes(Path(app.config["DATA_DIR"]), _embedders(app))
                app.extensions["kb.indexes"] = indexes
    return indexes


_create_lock = threading.Lock()


def _embedders(app: Flask) -> list[Embedder]:
    spec = str(app.config["EMBEDDING_MODELS"])
    if spec == "fake":
        # For fast unit tests only: hashed character n-grams, no model.
        return [FakeEmbedder()]
    models_dir = Path(app.config["MODELS_DIR"] or Path(app.config["DATA_DIR"]) / "models")
    return load_embedders(spec, models_dir, num_threads=int(app.config["TORCH_THREADS"]))


class _Wakeable(Protocol):
    def wake(self) -> None: ...


def notify() -> None:
    """Tell the indexer that the outbox has news (after a commit)."""
    app = current_app
    if app.config["INDEX_SYNC"]:
        try:
            drain()
        except Exception:
            # The write is committed and its outbox row kept: the next drain repairs the index.
            log.exception("indexing after write failed; will retry from the outbox")
        return
    worker: _Wakeable | None = app.extensions.get("kb.index_worker")  # kb.searching.worker
    if worker is not None:
        worker.wake()


def drain(*, progress: Progress | None = None) -> int:
    """Index every campaign named in the outbox; return how many were processed.

    Keyword entries go first and stay current while vectors are computed: between slices of
    embedding work, campaigns queued meanwhile are keyword-indexed at once, so one huge campaign
    or a bulk import never keeps a small write out of keyword search for longer than one slice.
    Returns 0 at once when another process is draining: it will see our rows too.
    """
    indexes = get_indexes()
    done = 0
    with _indexer_lock(indexes.data_dir, blocking=False) as acquired:
        if not acquired:
            return 0
        db.session.commit()  # read what was committed before the lock, not an older snapshot
        if not indexes.keyword.is_usable or indexes.keyword.is_stale:
            # A missing, unreadable or outdated (analyzer changed) index is rebuilt whole.
            _rebuild_keyword(indexes)
        keyword_upto = _index_keywords_after(indexes, 0)
        while True:
            rows = db.session.execute(
                sa.select(IndexOutbox.id, IndexOutbox.campaign_id)
                .where(IndexOutbox.id <= keyword_upto)
                .order_by(IndexOutbox.id)
                .limit(BATCH)
            ).all()
            db.session.commit()
            if not rows:
                break
            campaign_ids = sorted({campaign_id for _, campaign_id in rows})
            texts = [campaign_text(c) for c in _load_live(campaign_ids)]
            # Again, cheaply: on PostgreSQL a lower outbox id can commit after a higher one was
            # read, so a catch-up may have passed over this row.
            indexes.keyword.upsert(texts)
            # Small campaigns first: their vectors are ready in a moment, a large one's later.
            texts.sort(key=lambda text: len(passages(text)))
            for start in range(0, len(texts), EMBED_SLICE):
                store_embeddings(indexes.embedders, texts[start : start + EMBED_SLICE])
                keyword_upto = _index_keywords_after(indexes, keyword_upto)
            indexes.keyword.delete(set(campaign_ids) - {text.id for text in texts})
            _drop_vectors(indexes, set(campaign_ids) - {text.id for text in texts})
            indexes.sync_vectors()
            with write_transaction() as session:
                session.execute(
                    sa.delete(IndexOutbox).where(IndexOutbox.id.in_([row_id for row_id, _ in rows]))
                )
            done += len(campaign_ids)
            if progress:
                progress(len(campaign_ids))
    return done


def _index_keywords_after(indexes: SearchIndexes, after_id: int) -> int:
    """Keyword-index the campaigns queued with an outbox id above ``after_id``; return the last id.

    Idempotent, and cheap next to embedding.
    """
    rows = db.session.execute(
        sa.select(IndexOutbox.id, IndexOutbox.campaign_id)
        .where(IndexOutbox.id > after_id)
        .order_by(IndexOutbox.id)
    ).all()
    db.session.commit()
    if not rows:
        return after_id
    campaign_ids = sorted({campaign_id for _, campaign_id in rows})
    for start in range(0, len(campaign_ids), BATCH):
        chunk = campaign_ids[start : start + BATCH]
        held = {id(obj) for obj in db.session.identity_map.values()}
        live = [campaign_text(c) for c in _load_live(chunk)]
        indexes.keyword.upsert(live)
        gone = set(chunk) - {text.id for text in live}
        if gone:
            indexes.keyword.delete(gone)
            _drop_vectors(indexes, gone)
        _release_loaded(held)
    return int(rows[-1][0])


def _release_loaded(held: set[int]) -> None:
    """Drop what this step loaded from the session (bounded memory over a bulk import).

    Objects the session held before are kept: with ``INDEX_SYNC`` the drain runs inside the
    request that wrote, whose view still reads its own campaign afterwards.
    """
    for obj in list(db.session.identity_map.values()):
        if id(obj) not in held and obj in db.session:
            db.session.expunge(obj)


def _drop_vectors(indexes: SearchIndexes, campaign_ids: set[int]) -> None:
    if campaign_ids:
        for vectors in indexes.vectors.values():
            vectors.remove(campaign_ids)


def index_campaigns(indexes: SearchIndexes, campaign_ids: Sequence[int]) -> None:
    """Bring the entries of these campaigns in line with the database."""
    live = [campaign_text(c) for c in _load_live(campaign_ids)]
    indexes.keyword.upsert(live)
    store_embeddings(indexes.embedders, live)
    gone = set(campaign_ids) - {text.id for text in live}
    if gone:
        indexes.keyword.delete(gone)
        _drop_vectors(indexes, gone)
    indexes.sync_vectors()


def store_embeddings(embedders: Sequence[Embedder], texts: Sequence[CampaignText]) -> None:
    """Embed the passages of these campaigns with every model, reusing unchanged passages."""
    if not texts:
        return
    ids = [text.id for text in texts]
    split = {text.id: passages(text) for text in texts}
    for embedder in embedders:
        stored = {
            (campaign_id, sha1): vector
            for campaign_id, sha1, vector in db.session.execute(
                sa.select(
                    PassageEmbedding.campaign_id,
                    PassageEmbedding.text_sha1,
                    PassageEmbedding.vector,
                ).where(
                    PassageEmbedding.campaign_id.in_(ids),
                    PassageEmbedding.model == embedder.name,
                    PassageEmbedding.dim == embedder.dim,
                )
            )
        }
        db.session.commit()
        rows: list[PassageEmbedding] = []
        missing: list[tuple[PassageEmbedding, str]] = []
        for campaign_id, found in split.items():
            for position, passage in enumerate(found):
                sha1 = _sha1(passage.cache_key)
                # Vectors stored before passages had a cache key are named by their whole text.
                vector = stored.get((campaign_id, sha1)) or stored.get(
                    (campaign_id, _sha1(passage.text)), b""
                )
                row = PassageEmbedding(
                    campaign_id=campaign_id,
                    model=embedder.name,
                    dim=embedder.dim,
                    position=position,
                    section=passage.section[:200],
                    text_sha1=sha1,
                    vector=vector,
                )
                rows.append(row)
                if not row.vector:
                    missing.append((row, passage.text))
        for start in range(0, len(missing), ENCODE_BATCH):
            batch = missing[start : start + ENCODE_BATCH]
            vectors = embedder.encode_passages([text for _, text in batch])
            for (row, _), vector in zip(batch, vectors, strict=True):
                row.vector = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        with write_transaction() as session:
            session.execute(
                sa.delete(PassageEmbedding).where(
                    PassageEmbedding.campaign_id.in_(ids),
                    PassageEmbedding.model == embedder.name,
                )
            )
            session.add_all(rows)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def reconcile() -> int:
    """Queue every campaign whose index entries are missing or out of date; return how many."""
    indexes = get_indexes()
    live = dict(
        db.session.execute(
            sa.select(Campaign.id, Campaign.version).where(Campaign.deleted_at.is_(None))
        ).all()
    )
    stale: set[int] = set()
    if indexes.keyword.is_usable and not indexes.keyword.is_stale:
        indexed = indexes.keyword.versions()
        stale |= {cid for cid, version in live.items() if indexed.get(cid) != version}
        stale |= set(indexed) - set(live)
    else:
        stale |= set(live)
    for embedder in indexes.embedders:
        embedded = set(
            db.session.scalars(
                sa.select(PassageEmbedding.campaign_id)
                .where(
                    PassageEmbedding.model == embedder.name, PassageEmbedding.dim == embedder.dim
                )
                .distinct()
            )
        )
        stale |= set(live) - embedded
    db.session.commit()
    if stale:
        with write_transaction() as session:
            session.add_all(IndexOutbox(campaign_id=cid) for cid in sorted(stale))
    return len(stale)


def rebuild(*, progress: Progress | None = None) -> int:
    """Rebuild every index from the database; return the number of campaigns indexed."""
    indexes = get_indexes()
    with _indexer_lock(indexes.data_dir, blocking=True):
        # A read transaction opened before the lock (the CLI counts campaigns first) would pin
        # an older snapshot on SQLite: campaigns indexed meanwhile by a drain would be missed.
        db.session.commit()
        # The entries queued now, by id: on PostgreSQL a lower id may still commit later, and its
        # entry must stay queued (a range "id <= newest" would drop it unseen).
        queued = list(db.session.scalars(sa.select(IndexOutbox.id)))
        ids = list(
            db.session.scalars(
                sa.select(Campaign.id).where(Campaign.deleted_at.is_(None)).order_by(Campaign.id)
            )
        )
        db.session.commit()
        for start in range(0, len(ids), BATCH):
            texts = [campaign_text(c) for c in _load_live(ids[start : start + BATCH])]
            store_embeddings(indexes.embedders, texts)
            if progress:
                progress(len(texts))
        _rebuild_keyword(indexes, ids)
        # Everything queued before the rebuild began is now reflected in it.
        with write_transaction() as session:
            for start in range(0, len(queued), 500):
                chunk = queued[start : start + 500]
                session.execute(sa.delete(IndexOutbox).where(IndexOutbox.id.in_(chunk)))
        indexes.sync_vectors()
    # What was written during the rebuild is still queued: index it now, not on the next write.
    drain()
    return len(ids)


def _rebuild_keyword(indexes: SearchIndexes, ids: Sequence[int] | None = None) -> None:
    """Rebuild the keyword index from the database (the caller holds the indexer lock)."""
    if ids is None:
        ids = list(
            db.session.scalars(
                sa.select(Campaign.id).where(Campaign.deleted_at.is_(None)).order_by(Campaign.id)
            )
        )
        db.session.commit()
    log.info("rebuilding the keyword index from the database (%d campaigns)", len(ids))
    indexes.keyword.rebuild(_iter_texts(ids))


def _iter_texts(ids: Sequence[int]) -> Iterator[CampaignText]:
    for start in range(0, len(ids), BATCH):
        yield from (campaign_text(c) for c in _load_live(ids[start : start + BATCH]))
        db.session.expunge_all()  # bounded memory over a large rebuild


def _load_live(campaign_ids: Sequence[int]) -> list[Campaign]:
    campaigns = db.session.scalars(
        sa.select(Campaign)
        .where(Campaign.id.in_(campaign_ids), Campaign.deleted_at.is_(None))
        .options(
            selectinload(Campaign.rewards),
            selectinload(Campaign.metrics),
            selectinload(Campaign.hypotheses),
            selectinload(Campaign.documents),
        )
    ).all()
    return list(campaigns)


@contextmanager
def _indexer_lock(data_dir: Path, *, blocking: bool) -> Iterator[bool]:
    """Hold the one-indexer-at-a-time lock shared by every process on this data directory."""
    path = data_dir / "indexer.lock"
    with path.open("w") as handle:
        flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def warm_up() -> None:
    """Load the vectors, models and relevance floor now, so the first search does not pay for it."""
    from kb.searching import floor  # floor imports this module

    indexes = get_indexes()
    indexes.sync_vectors()
    for embedder in indexes.embedders:
        embedder.encode_queries(["预热"])
    floor.calibration(indexes)  # embeds the floor's background texts: seconds with e5
    # /readyz asks models_ready(): these indexes (a restore replaces them) have been warmed.
    current_app.extensions[_WARMED] = indexes


_WARMED = "kb.indexes_warmed"


def models_ready() -> bool:
    """Say whether this process's embedders have been warmed up (``warm_up`` ran on them)."""
    indexes = current_app.extensions.get("kb.indexes")
    return indexes is not None and current_app.extensions.get(_WARMED) is indexes
