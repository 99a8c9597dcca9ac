"""Embed the library with a model added to KB_EMBEDDING_MODELS, in the background.

A model serves searches only once every live campaign has its vectors: until then the models
already complete keep serving alone, so a half-filled model never skews a ranking. The filling
runs on the indexer's background loop after each drain (kb/searching/worker.py), a few campaigns
at a time, outside the change feed (a slow model must not hold back the feed, its pruning or the
readiness of a host) and yielding to it: writes are indexed first. The vectors are stored in the
database, so one process of all hosts computes them (an advisory lock) and every host loads them.
A model that has served once keeps serving in this process; campaigns written later get its
vectors from the drain, as every model's. While no model is complete (a library indexed for the
first time), every model serves what it has.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa
from flask import current_app

from kb.extensions import db
from kb.models import Campaign, IndexOutbox, PassageEmbedding
from kb.searching import feed
from kb.searching.documents import campaign_text
from kb.searching.indexer import SearchIndexes, file_lock, get_indexes, load_live, store_embeddings
from search.embedder import Embedder, ModelSpec, Prompts, parse_model_specs

log = logging.getLogger(__name__)

# Campaigns embedded per slice (one model): up to 96 passages each, so a slice takes seconds even
# with a 300M-parameter model on a CPU; the change feed is looked at between slices.
SLICE = 2
# pg_try_advisory_lock key of the filler ("kbfill"): one process of all hosts fills at a time.
FILL_LOCK_KEY = 0x6B6266696C6C
# While a model is filling, each process's background loop counts the coverage again at most
# this often, to promote a model another process or host completed.
RECOUNT_S = 5.0
# The filler logs each filling model's progress at most this often.
PROGRESS_LOG_S = 30.0

ModelStatus = Literal["serving", "filling"]


@dataclass(frozen=True, slots=True)
class ModelState:
    """One configured embedding model as this process uses it."""

    name: str
    source: str  # e5, use or the folder's path
    dim: int
    weight: float
    prompts: Prompts | None  # a folder model's prompts; None: the built-in model's own
    embedded: int  # live campaigns that have this model's vectors
    live: int  # live campaigns
    status: ModelStatus

    @property
    def coverage_pct(self) -> float:
        """Share of live campaigns with this model's vectors, in percent (100 for none)."""
        return 100.0 if self.live == 0 else round(100.0 * self.embedded / self.live, 1)


@dataclass(slots=True)
class _Models:
    specs: dict[str, ModelSpec]
    serving: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)  # model -> live campaigns embedded
    live: int = 0
    counted_at: float | None = None  # time.monotonic() of the last count
    lock: threading.Lock = field(default_factory=threading.Lock)


_models: weakref.WeakKeyDictionary[SearchIndexes, _Models] = weakref.WeakKeyDictionary()
_models_lock = threading.Lock()


def _state(indexes: SearchIndexes) -> _Models:
    with _models_lock:
        found = _models.get(indexes)
        if found is None:
            spec = str(current_app.config["EMBEDDING_MODELS"])
            specs = {} if spec.strip() == "fake" else {s.name: s for s in parse_model_specs(spec)}
            found = _models[indexes] = _Models(specs=specs)
        return found


def _recount(indexes: SearchIndexes, models: _Models) -> None:
    """Count, per model, the live campaigns that have its vectors (the first count promotes).

    Later promotions are the background loop's (``_promote_complete``); a status page only
    counts. One index-only probe per live campaign and model (the unique index on campaign,
    model and position covers it): ≈ 0.5 ms per model at 2,000 campaigns on SQLite, where
    counting distinct campaigns over the vectors' rows took 200 ms. The dimension is not checked
    here: a model folder replaced by one of another size must get another name.
    """
    live_campaigns = (
        sa.select(sa.func.count()).select_from(Campaign).where(Campaign.deleted_at.is_(None))
    )
    counts: dict[str, int] = {}
    for embedder in indexes.embedders:
        has_vectors = sa.exists().where(
            PassageEmbedding.campaign_id == Campaign.id,
            PassageEmbedding.model == embedder.name,
        )
        counts[embedder.name] = int(db.session.scalar(live_campaigns.where(has_vectors)) or 0)
    models.live = int(db.session.scalar(live_campaigns) or 0)
    db.session.commit()
    if models.counted_at is None:
        models.serving = {name for name, count in counts.items() if count >= models.live}
    models.counts = counts
    models.counted_at = time.monotonic()


def _promote_complete(indexes: SearchIndexes, models: _Models) -> None:
    """Let the models that now have every live campaign's vectors rank searches.

    The relevance floor's background texts are embedded with them first and the floor is
    recalibrated right after, here on the background loop: the first search after a promotion
    pays neither (≈ 1-3 s with e5 on the demo).
    """
    from kb.searching import floor  # floor imports this module

    complete = [
        e
        for e in indexes.embedders
        if e.name not in models.serving and models.counts.get(e.name, 0) >= models.live
    ]
    if not complete:
        return
    for embedder in complete:
        floor.prepare(indexes, embedder)
    with models.lock:
        for embedder in complete:
            log.info("模型 %s 的向量已齐（%d 个活动），开始用于搜索", embedder.name, models.live)
            models.serving.add(embedder.name)
    floor.calibration(indexes)


def _current(indexes: SearchIndexes, *, recount: bool = False) -> _Models:
    """Return the models' state, counted on first use and again (without promoting) on ``recount``."""
    models = _state(indexes)
    with models.lock:
        if recount or models.counted_at is None:
            _recount(indexes, models)
    return models


def _refresh(indexes: SearchIndexes) -> _Models:
    """Count again when a model is filling and the last count is older than RECOUNT_S.

    Runs on the indexer's background loop of every process (``fill``), so each one promotes a
    model completed by another process (or host) within a round; the search path never counts.
    """
    models = _state(indexes)
    with models.lock:
        if models.counted_at is None or (
            len(models.serving) < len(indexes.embedders)
            and time.monotonic() - models.counted_at >= RECOUNT_S
        ):
            _recount(indexes, models)
    return models


def serving(indexes: SearchIndexes | None = None) -> list[Embedder]:
    """Return the embedders that rank searches now, in the configured order.

    Those with every live campaign's vectors; every embedder while none is complete yet. Counts
    only on this process's first call; promotions come from the background loop (``fill``).
    """
    indexes = indexes or get_indexes()
    models = _current(indexes)
    complete = [e for e in indexes.embedders if e.name in models.serving]
    return complete or list(indexes.embedders)


def weights(indexes: SearchIndexes | None = None) -> dict[str, float]:
    """Return each model's fusion weight (KB_EMBEDDING_MODELS ``name=model:weight``)."""
    models = _state(indexes or get_indexes())
    return {name: spec.weight for name, spec in models.specs.items()}


def model_states(indexes: SearchIndexes | None = None) -> list[ModelState]:
    """Describe every configured model: dimension, weight, coverage and whether it serves.

    Counts the coverage now: one index probe per live campaign and model.
    """
    indexes = indexes or get_indexes()
    models = _current(indexes, recount=True)
    in_force = {e.name for e in serving(indexes)}
    states = []
    for embedder in indexes.embedders:
        spec = models.specs.get(embedder.name)
        states.append(
            ModelState(
                name=embedder.name,
                source=spec.source if spec else embedder.name,
                dim=embedder.dim,
                weight=spec.weight if spec else 1.0,
                prompts=getattr(embedder, "prompts", None),
                embedded=models.counts.get(embedder.name, 0),
                live=models.live,
                status="serving" if embedder.name in in_force else "filling",
            )
        )
    return states


def fill(indexes: SearchIndexes | None = None, *, max_slices: int | None = None) -> int:
    """Embed live campaigns that lack a model's vectors, slice by slice; return how many.

    Does nothing once every model serves (a later gap in a serving model is for the drain and
    reconcile to repair). One process of all hosts fills at a time (``_fill_lock``). Stops when
    no model lacks any, when the change feed has work (changes to embed or to apply here: writes
    go first, and the wake-up that announced them brings the loop back here afterwards), when
    another process fills, or after ``max_slices`` slices.
    """
    indexes = indexes or get_indexes()
    models = _refresh(indexes)
    # Nothing to fill once every model serves: no query at all on the loop's every round.
    if len(models.serving) == len(indexes.embedders):
        return 0
    done = _fill(indexes, max_slices)
    if done:
        with models.lock:
            _recount(indexes, models)
    _promote_complete(indexes, models)
    return done


def _fill(indexes: SearchIndexes, max_slices: int | None) -> int:
    done = 0
    logged_at = time.monotonic()
    with _fill_lock(indexes) as acquired:
        if not acquired:
            return 0
        while max_slices is None or done < max_slices * SLICE:
            if _feed_has_work():
                break
            embedded = _fill_slice(indexes)
            if not embedded:
                break
            done += embedded
            indexes.sync_vectors()
            models = _state(indexes)
            with models.lock:
                _recount(indexes, models)  # counts only: fill() promotes at the end
            if time.monotonic() - logged_at >= PROGRESS_LOG_S:
                _log_progress(indexes, models)
                logged_at = time.monotonic()
            db.session.expunge_all()  # bounded memory over a whole library
    return done


def _log_progress(indexes: SearchIndexes, models: _Models) -> None:
    for embedder in indexes.embedders:
        if embedder.name not in models.serving:
            embedded = models.counts.get(embedder.name, 0)
            log.info(
                "模型 %s 后台补算向量：%d / %d 个活动（%.1f%%）",
                embedder.name,
                embedded,
                models.live,
                100.0 * embedded / max(models.live, 1),
            )


def _feed_has_work() -> bool:
    head = feed.head()
    busy = feed.embedded_upto() < head or feed.keyword_seq() < head
    db.session.commit()
    return busy


def _fill_slice(indexes: SearchIndexes) -> int:
    """Embed one slice of campaigns for the first model that lacks some; return how many.

    A campaign with a change waiting in the feed is left to the drain, which embeds it with
    every model from its current text.
    """
    waiting = sa.exists().where(
        IndexOutbox.campaign_id == Campaign.id, IndexOutbox.embedded_at.is_(None)
    )
    for embedder in indexes.embedders:
        embedded = sa.exists().where(
            PassageEmbedding.campaign_id == Campaign.id,
            PassageEmbedding.model == embedder.name,
            PassageEmbedding.dim == embedder.dim,
        )
        lacking = list(
            db.session.scalars(
                sa.select(Campaign.id)
                .where(Campaign.deleted_at.is_(None), ~embedded, ~waiting)
                .order_by(Campaign.id)
                .limit(SLICE)
            )
        )
        db.session.commit()
        if lacking:
            store_embeddings([embedder], [campaign_text(c) for c in load_live(lacking)])
            return len(lacking)
    return 0


@contextmanager
def _fill_lock(indexes: SearchIndexes) -> Iterator[bool]:
    """Hold the one-filler-of-all-hosts lock: a PostgreSQL advisory lock, else a file lock.

    A SQLite database has one host, so a lock file in its data directory covers every process.
    """
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            acquired = bool(
                connection.scalar(sa.select(sa.func.pg_try_advisory_lock(FILL_LOCK_KEY)))
            )
            connection.commit()
            try:
                yield acquired
            finally:
                if acquired:
                    connection.scalar(sa.select(sa.func.pg_advisory_unlock(FILL_LOCK_KEY)))
                    connection.commit()
        return
    with file_lock(indexes.data_dir / "backfill.lock", blocking=False) as acquired:
        yield acquired
