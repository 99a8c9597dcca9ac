"""Keep this host's search indexes in step with the database, which stays the only truth.

Every write adds an ``IndexOutbox`` entry to the change feed in its own transaction. Each host
follows the feed with its own mark (kb.searching.feed): after each write, at start and on a
timer it applies the entries above its mark to its keyword index, loading each campaign as it
is now, so applying is idempotent and a failed index write or a crash is repaired by the next
round. Embeddings are claimed through the database and computed once for all hosts; every
process loads the stored vectors. One process per host drains at a time (a file lock in
``KB_DATA_DIR``), so the gunicorn workers of a host share its keyword index; each keeps its own
reader and in-memory vectors.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np
import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import selectinload

from kb import outbox
from kb.database import write_transaction
from kb.extensions import db
from kb.models import Campaign, CampaignVersion, IndexOutbox, PassageEmbedding
from kb.searching import feed, vector_file
from kb.searching.documents import campaign_text
from kb.searching.facts import FactsCache
from search.documents import CampaignText, passages
from search.embedder import Embedder, FakeEmbedder, load_embedders
from search.keyword import KeywordIndex, SearchFilters
from search.vector import VectorIndex

log = logging.getLogger(__name__)

BATCH = 100  # campaigns per drain step: bounds memory and the time the lock is held
# Campaigns read from the database at a time by a rebuild (one query per table each).
REBUILD_BATCH = 500
# A rebuild says how far it is in the log this often.
REBUILD_LOG_EVERY_S = 10.0
ENCODE_BATCH = 32
# Campaigns embedded between two keyword catch-ups while draining: at most 96 passages each
# (search.documents.MAX_PASSAGES), so a slice takes seconds even on a CPU without AVX-512.
EMBED_SLICE = 4
# A slice whose embedding failed is left to anyone after this long (others go first meanwhile).
EMBED_RETRY_S = 60.0
# Say this host is alive this often (at most; four times per KB_INDEX_HOST_TIMEOUT_S at least).
HEARTBEAT_S = 30.0
# Entries every live host has applied are deleted at most this often (per process).
PRUNE_EVERY_S = 60.0
Progress = Callable[[int], None]


class SearchIndexes:
    """This process's view of the indexes: the Whoosh index, the embedders, in-memory vectors."""

    def __init__(self, data_dir: Path, embedders: Sequence[Embedder]) -> None:
        self.data_dir = data_dir
        # The keyword index and the feed mark it has applied (kb.searching.feed) live here.
        self.index_dir = data_dir / "index"
        self.keyword = KeywordIndex(self.index_dir / "keyword")
        self.pruned_at = float("-inf")
        self.beat_at = float("-inf")
        self.embedders = list(embedders)
        self.vectors = {e.name: VectorIndex(e.name, e.dim) for e in self.embedders}
        # The highest PassageEmbedding id loaded into memory: rows above it are news.
        self._loaded_upto = 0
        # The highest CampaignVersion id seen: trash and restore rows above it are news.
        self._history_upto = 0
        self._sync_lock = threading.Lock()
        # Outcome queries' metric facts, per campaign version (a restore replaces this object).
        self.facts = FactsCache()

    def _apply_trash(self, after_id: int) -> None:
        if after_id == 0 and self._loaded_upto == 0:
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
            if self._loaded_upto == 0:
                vector_file.restore(self)  # map this host's copy (kb/searching/vector_file.py)
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
            vector_file.save_if_due(self)

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
    """Follow the change feed on this host; return how many campaigns were keyword-indexed.

    Keyword entries go first and stay current while vectors are computed: between slices of
    embedding work (claimed through the database, once for all hosts), entries that arrived
    meanwhile are keyword-indexed at once, so one huge campaign or a bulk import never keeps a
    small write out of keyword search for longer than one slice. Returns 0 at once when another
    process of this host is draining: it applies our entries too. A failure is kept for
    ``GET /api/v1/index/status`` and raised; the next round retries from the marks.
    """
    indexes = get_indexes()
    with _indexer_lock(indexes.data_dir, blocking=False) as acquired:
        if not acquired:
            return 0
        db.session.commit()  # read what was committed before the lock, not an older snapshot
        try:
            return _follow(indexes, progress)
        except Exception as exc:
            db.session.rollback()
            feed.record_error(f"{type(exc).__name__}: {exc}")
            raise


def _follow(indexes: SearchIndexes, progress: Progress | None) -> int:
    _heartbeat(indexes)
    mark = _caught_up_mark(indexes)
    mark, done = _apply_entries(indexes, mark, progress)
    while (claim := feed.claim_embeddings(EMBED_SLICE)) is not None:
        held = {id(obj) for obj in db.session.identity_map.values()}
        try:
            texts = [campaign_text(c) for c in load_live(claim.campaign_ids)]
            # Small campaigns first: their vectors are ready in a moment, a large one's later.
            texts.sort(key=lambda text: len(passages(text)))
            store_embeddings(indexes.embedders, texts)
        except Exception:
            db.session.rollback()
            feed.release_embeddings(claim, retry_after_s=EMBED_RETRY_S)
            raise
        feed.finish_embeddings(claim)
        _release_loaded(held)
        mark, more = _apply_entries(indexes, mark, progress)
        done += more
        _heartbeat(indexes)
    indexes.sync_vectors()
    if time.monotonic() - indexes.pruned_at > PRUNE_EVERY_S:
        feed.prune()
        indexes.pruned_at = time.monotonic()
    return done


def _heartbeat(indexes: SearchIndexes) -> None:
    """Say this host is alive, a few times per host timeout (a write, so not every round)."""
    every = min(HEARTBEAT_S, float(current_app.config["INDEX_HOST_TIMEOUT_S"]) / 4)
    if time.monotonic() - indexes.beat_at > every:
        feed.heartbeat()
        indexes.beat_at = time.monotonic()


def _caught_up_mark(indexes: SearchIndexes) -> int:
    """Return this host's mark, first catching up from the database if the feed cannot serve.

    A missing, unreadable or outdated (analyzer changed) index is rebuilt whole. An index
    without a mark (made before the feed) or with one below the pruned mark (the host was away
    while entries it needed were deleted) is compared campaign by campaign with the database.
    """
    index_dir = indexes.index_dir
    if not indexes.keyword.is_usable or indexes.keyword.is_stale:
        seq = feed.register_catch_up()
        _rebuild_keyword(indexes)
        feed.write_mark(index_dir, seq)
        return seq
    mark = feed.read_mark(index_dir)
    # Above the head: the database went back (a restored backup), its ids will be reused.
    if mark is None or mark < outbox.pruned_upto() or mark > feed.head():
        seq = feed.register_catch_up()
        db.session.commit()
        log.info("catching up the keyword index from the database (mark %s, head %d)", mark, seq)
        _reconcile_keyword(indexes)
        feed.write_mark(index_dir, seq)
        return seq
    return mark


def _apply_entries(indexes: SearchIndexes, mark: int, progress: Progress | None) -> tuple[int, int]:
    """Keyword-index the campaigns of the entries above ``mark``; return the new mark and count.

    Idempotent (each campaign is indexed as it is now), and cheap next to embedding.
    """
    done = 0
    while rows := feed.entries_after(mark, BATCH):
        campaign_ids = sorted({campaign_id for _, campaign_id in rows})
        held = {id(obj) for obj in db.session.identity_map.values()}
        live = [campaign_text(c) for c in load_live(campaign_ids)]
        indexes.keyword.upsert(live)
        gone = set(campaign_ids) - {text.id for text in live}
        if gone:
            indexes.keyword.delete(gone)
            _drop_vectors(indexes, gone)
        _release_loaded(held)
        mark = rows[-1][0]
        feed.write_mark(indexes.index_dir, mark)
        done += len(campaign_ids)
        if progress:
            progress(len(campaign_ids))
    return mark, done


def _reconcile_keyword(indexes: SearchIndexes) -> int:
    """Bring the keyword index in line with the database by (id, version); return the changes."""
    live = dict(
        db.session.execute(
            sa.select(Campaign.id, Campaign.version).where(Campaign.deleted_at.is_(None))
        ).all()
    )
    db.session.commit()
    indexed = indexes.keyword.versions()
    stale = sorted(cid for cid, version in live.items() if indexed.get(cid) != version)
    gone = set(indexed) - set(live)
    for start in range(0, len(stale), BATCH):
        held = {id(obj) for obj in db.session.identity_map.values()}
        texts = [campaign_text(c) for c in load_live(stale[start : start + BATCH])]
        indexes.keyword.upsert(texts)
        gone |= set(stale[start : start + BATCH]) - {text.id for text in texts}
        _release_loaded(held)
    if gone:
        indexes.keyword.delete(gone)
        _drop_vectors(indexes, gone)
    return len(stale) + len(gone)


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
    live = [campaign_text(c) for c in load_live(campaign_ids)]
    indexes.keyword.upsert(live)
    store_embeddings(indexes.embedders, live)
    gone = set(campaign_ids) - {text.id for text in live}
    if gone:
        indexes.keyword.delete(gone)
        _drop_vectors(indexes, gone)
    indexes.sync_vectors()


def store_embeddings(embedders: Sequence[Embedder], texts: Sequence[CampaignText]) -> None:
    """Embed the passages of these campaigns with every model, reusing unchanged passages.

    A campaign edited while its passages were being encoded keeps the vectors it had: the texts
    encoded here are out of date, and the edit's own entry in the change feed embeds the new text.
    Without this check, a slow encoder (a background fill, or another host's drain) finishing
    after the edit's drain would overwrite the new vectors with the old text's.
    """
    if not texts:
        return
    versions = {text.id: text.version for text in texts}
    ids = list(versions)
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
            # FOR SHARE: an edit committing between this check and the commit below waits for it,
            # so its drain runs after these rows are written and replaces them (SQLite's write
            # transaction already excludes every other writer).
            current = {
                (campaign_id, version)
                for campaign_id, version in session.execute(
                    sa.select(Campaign.id, Campaign.version)
                    .where(Campaign.id.in_(ids))
                    .with_for_update(read=True)
                )
            }
            unchanged = {i for i in ids if (i, versions[i]) in current}
            if len(unchanged) < len(ids):
                log.info(
                    "活动 %s 在计算向量期间被修改，丢弃旧文本的向量（由修改的变更记录重新计算）",
                    sorted(set(ids) - unchanged),
                )
            session.execute(
                sa.delete(PassageEmbedding).where(
                    PassageEmbedding.campaign_id.in_(unchanged),
                    PassageEmbedding.model == embedder.name,
                )
            )
            session.add_all(row for row in rows if row.campaign_id in unchanged)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def reconcile() -> int:
    """Repair what the feed cannot know about; return how many campaigns needed it.

    This host's keyword entries are compared with the database (id and version) and fixed at
    once; live campaigns without embeddings for a configured model (a model added, a lost row)
    get a feed entry, so that one host computes them for all. Skipped while another process of
    this host drains (it holds the keyword index).
    """
    indexes = get_indexes()
    fixed = 0
    with _indexer_lock(indexes.data_dir, blocking=False) as acquired:
        if acquired and indexes.keyword.is_usable and not indexes.keyword.is_stale:
            db.session.commit()
            fixed = _reconcile_keyword(indexes)
    waiting = set(
        db.session.scalars(
            sa.select(IndexOutbox.campaign_id).where(IndexOutbox.embedded_at.is_(None))
        )
    )
    from kb.searching import backfill  # backfill imports this module

    missing: set[int] = set()
    # A model still filling gets its vectors from kb.searching.backfill, outside the feed.
    for embedder in backfill.serving(indexes):
        missing |= set(db.session.scalars(_unembedded(embedder))) - waiting
    db.session.commit()
    if missing:
        with write_transaction() as session:
            session.add_all(IndexOutbox(campaign_id=cid) for cid in sorted(missing))
    return fixed + len(missing)


def _unembedded(embedder: Embedder) -> sa.Select[int]:
    """Select the live campaigns that have no stored passage of ``embedder`` (name and size).

    One probe of the (campaign_id, model, position) index per campaign, stopping at its first
    row. Was: the distinct campaigns of all the model's rows, which reads every stored row (its
    dim is beside the vector) at every worker's start: at 30,000 campaigns 3.9 + 6.4 s against
    1.3 + 1.3 s on a loaded 2-core box, and at 100,000 the whole 4 GB table per worker.
    """
    stored = sa.select(PassageEmbedding.id).where(
        PassageEmbedding.campaign_id == Campaign.id,
        PassageEmbedding.model == embedder.name,
        PassageEmbedding.dim == embedder.dim,
    )
    return sa.select(Campaign.id).where(Campaign.deleted_at.is_(None), ~stored.exists())


def rebuild(*, progress: Progress | None = None) -> int:
    """Rebuild this host's keyword index and every stored embedding from the database.

    Returns the number of campaigns indexed. The host's mark becomes the feed head read before
    anything else (under the indexer's lock), and what was written meanwhile is applied after.
    One pass over the database: each batch of campaigns is embedded (stored vectors reused),
    then handed to the keyword build; ``progress`` gets the campaigns done at each step. The
    old keyword index serves searches until the new one is complete.
    """
    indexes = get_indexes()
    with _indexer_lock(indexes.data_dir, blocking=True):
        # A read transaction opened before the lock (the CLI counts campaigns first) would pin
        # an older snapshot on SQLite: campaigns indexed meanwhile by a drain would be missed.
        db.session.commit()
        seq = feed.register_catch_up()
        ids = _live_ids()

        def embedded(texts: list[CampaignText]) -> list[CampaignText]:
            store_embeddings(indexes.embedders, texts)
            return texts

        _rebuild_keyword(indexes, ids, prepare=embedded, progress=progress)
        feed.write_mark(indexes.index_dir, seq)
        indexes.sync_vectors()
    # What was written during the rebuild is still in the feed: index it now.
    drain()
    return len(ids)


def _live_ids() -> list[int]:
    ids = list(
        db.session.scalars(
            sa.select(Campaign.id).where(Campaign.deleted_at.is_(None)).order_by(Campaign.id)
        )
    )
    db.session.commit()
    return ids


def _rebuild_keyword(
    indexes: SearchIndexes,
    ids: Sequence[int] | None = None,
    *,
    prepare: Callable[[list[CampaignText]], list[CampaignText]] | None = None,
    progress: Progress | None = None,
) -> None:
    """Rebuild the keyword index from the database (the caller holds the indexer lock).

    Built in a new directory while the old index (if any) keeps serving; progress goes to the
    log, to ``progress`` (campaigns per step) and to ``GET /api/v1/index/status``.
    """
    if ids is None:
        ids = _live_ids()
    log.info("rebuilding the keyword index from the database (%d campaigns)", len(ids))
    started = time.monotonic()
    reported = [0]  # campaigns reported so far (progress takes increments)
    logged_at = [started]

    def advance(added: int) -> None:
        if progress is not None:
            progress(added - reported[0])
        reported[0] = added
        if time.monotonic() - logged_at[0] >= REBUILD_LOG_EVERY_S:
            logged_at[0] = time.monotonic()
            log.info("keyword index: %d of %d campaigns", added, len(ids))

    indexes.keyword.rebuild(
        _iter_texts(ids, prepare),
        progress=advance,
        total=len(ids),
    )
    elapsed = time.monotonic() - started
    log.info(
        "keyword index rebuilt: %d campaigns in %.1f s (%.0f/s)",
        len(ids),
        elapsed,
        len(ids) / max(elapsed, 1e-9),
    )


def _iter_texts(
    ids: Sequence[int],
    prepare: Callable[[list[CampaignText]], list[CampaignText]] | None = None,
) -> Iterator[CampaignText]:
    for start in range(0, len(ids), REBUILD_BATCH):
        texts = [campaign_text(c) for c in load_live(ids[start : start + REBUILD_BATCH])]
        db.session.expunge_all()  # bounded memory over a large rebuild
        yield from prepare(texts) if prepare is not None else texts


def load_live(campaign_ids: Sequence[int]) -> list[Campaign]:
    """Return the campaigns of these ids that are not in the trash, with all they index."""
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
    with file_lock(data_dir / "indexer.lock", blocking=blocking) as acquired:
        yield acquired


@contextmanager
def file_lock(path: Path, *, blocking: bool) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` among the processes of this host; yield whether held."""
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
        embedder.encode_queries([WARM_UP_QUERY])
    floor.calibration(indexes)  # embeds the floor's background texts: seconds with e5
    # A ranked keyword search reads each segment's field lengths (BM25) document by document on
    # its first query, under the index's lock: ≈ 2.5 s of a first search's ≈ 6 at 30,000
    # campaigns on a loaded 2-core box, linear in campaigns (bench/results/startup_mem_session9.txt).
    indexes.keyword.search(WARM_UP_QUERY, filters=SearchFilters(), limit=1)
    # /readyz asks models_ready(): these indexes (a restore replaces them) have been warmed.
    current_app.extensions[_WARMED] = indexes


_WARMED = "kb.indexes_warmed"
WARM_UP_QUERY = "预热"


def models_ready() -> bool:
    """Say whether this process's embedders have been warmed up (``warm_up`` ran on them)."""
    indexes = current_app.extensions.get("kb.indexes")
    return indexes is not None and current_app.extensions.get(_WARMED) is indexes
