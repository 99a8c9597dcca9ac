"""The relevance floor's state in this process: background embeddings and corpus calibration.

The background texts are embedded once per model and process (as passages, and as queries
for the calibration: e5 embeds the two with different prompts), ≈ 2-8 s for e5 on the first
semantic search. The calibration depends on the corpus: it is redone when a model's passages
have moved, written or dropped (an edit that keeps a campaign's passage count too; by more than
RECALIBRATE_SHARE on a large corpus, where it costs one pass over the vectors, ≈ 0.1-0.2 s at
10k campaigns).

The contrast test (search/relevance.py) also needs the library's own short texts (titles, goals,
lesson lines) embedded as queries: read from the database at calibration, at most
LIBRARY_CAMPAIGNS campaigns spread over the id range, each text embedded once per host and
model (≈ 20 s with e5 for the demo's 614 texts on a busy 2-core box, then only a new campaign's
dozen) and kept in the data directory for the other workers and the next start. Each campaign's
texts are kept with its version, so a recalibration after a write reads only the campaigns that
changed.

A search never waits for a recalibration (issues 13 and 17: the first search after one edit of
the demo paid ≈ 0.36 s, the first of a fresh worker at 100k campaigns 18 s). When the corpus has
moved, the search goes on with the last calibration and one background thread per process and
SearchIndexes computes the new one and swaps it in whole (``Calibrated``: floors, centroids and
library rows together, so a search never mixes two). Only a search that finds no calibration for
its models at all (none yet, or a model just promoted) computes one itself; the indexer's
``warm_up`` does that at worker start, so normally no search does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from flask import Flask, current_app, has_app_context

from kb.extensions import db
from kb.models import Campaign
from kb.searching import backfill
from kb.searching.documents import campaign_text
from kb.searching.indexer import SearchIndexes, load_live
from search import relevance
from search.embedder import Embedder, Vectors
from search.relevance import (
    ADJACENT_PATH,
    LIBRARY_QUERIES,
    MIN_BACKGROUND,
    Calibration,
    ModelScores,
    background_texts,
    calibrate,
    contrast,
    library_queries,
)

log = logging.getLogger(__name__)

# Recalibrate on any change below this many passages; above it, on a change of this share.
SMALL_CORPUS_PASSAGES = 20_000
RECALIBRATE_SHARE = 0.02
# Campaigns whose texts stand for the library in the contrast test, spread over the id range.
LIBRARY_CAMPAIGNS = 200
# Recalibrate after a write on a background thread while searches use the last calibration;
# False computes it on the search that notices, as before session 8 (bench/floor_recalibration.py).
RECALIBRATE_IN_BACKGROUND = True
# The background recalibration starts this long after the search that noticed the change, so
# that search and the next ones right after it (the next page, a query typed again) run alone:
# beside it, on a busy 2-core host, the first search after an edit of the demo took a median
# 442 ms against 215 ms alone (bench/results/floor_recalibration_session8.txt). A burst of
# writes (an import) is also taken in one recalibration instead of one per search.
RECALIBRATE_DELAY_S = 1.0
# After a failed background recalibration, searches keep the last calibration this long before
# one more try: a failure that repeats (a broken database, a model that raises) costs one attempt
# a minute instead of one thread per search.
RETRY_AFTER_S = 60.0


@dataclass(slots=True)
class _Background:
    passages: Vectors  # (n, dim), unit rows
    queries: Vectors  # (n, dim), unit rows
    # The far-off texts and the neighbouring topics (search/data/adjacent_topics.txt), as queries.
    contrast: Vectors


@dataclass(frozen=True, slots=True)
class Calibrated:
    """One calibration and what model_scores compares queries with, swapped in as one."""

    calibration: Calibration
    counts: dict[str, int]  # model -> live passages it was computed on
    # model -> the index's changed_rows then: an edit that keeps the count moves it
    changes: dict[str, int]
    centroids: dict[str, Vectors]
    library: dict[str, Vectors]  # model -> the library's texts as unit query rows


@dataclass(slots=True)
class _FloorState:
    # Held only to read or swap ``current`` and to start a refresh: a search never waits on a
    # computation. ``computing`` serialises the computations (background and first) instead.
    lock: threading.Lock = field(default_factory=threading.Lock)
    computing: threading.Lock = field(default_factory=threading.Lock)
    backgrounds: dict[str, _Background] = field(default_factory=dict)
    current: Calibrated | None = None
    refresh: threading.Thread | None = None  # the background recalibration, while it runs
    failed_at: float | None = None  # time.monotonic() of the last failed background one
    # The library's texts as queries: per model, text -> unit vector (kept across calibrations
    # so a new campaign costs only its own texts). Touched only under ``computing``.
    library_vectors: dict[str, dict[str, Vectors]] = field(default_factory=dict)
    # Campaign id -> (its version, its library texts): only a changed campaign is read again.
    campaign_texts: dict[int, tuple[int, list[str]]] = field(default_factory=dict)

    @property
    def calibrated_at(self) -> dict[str, int]:
        """Return each model's live passages when the current calibration was computed."""
        current = self.current
        return {} if current is None else current.counts


_states: weakref.WeakKeyDictionary[SearchIndexes, _FloorState] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


def _state(indexes: SearchIndexes) -> _FloorState:
    with _states_lock:
        state = _states.get(indexes)
        if state is None:
            state = _states[indexes] = _FloorState()
        return state


def _unit(vectors: Vectors) -> Vectors:
    rows = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: Vectors = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return unit


def _background(state: _FloorState, embedder: Embedder) -> _Background | None:
    found = state.backgrounds.get(embedder.name)
    if found is None:
        texts = background_texts()
        if len(texts) < MIN_BACKGROUND:
            return None
        found = _embed_background(embedder, texts)
        state.backgrounds[embedder.name] = found
    return found


def _embed_background(embedder: Embedder, texts: list[str]) -> _Background:
    queries = _unit(embedder.encode_queries(texts))
    adjacent = [t for t in background_texts(ADJACENT_PATH) if t not in set(texts)]
    extra = _unit(embedder.encode_queries(adjacent)) if adjacent else queries[:0]
    return _Background(
        passages=_unit(embedder.encode_passages(texts)),
        queries=queries,
        contrast=np.vstack([queries, extra]),
    )


def prepare(indexes: SearchIndexes, embedder: Embedder) -> None:
    """Embed the background texts with a model about to serve, outside the search path.

    Seconds for e5, so without the lock that searches take: a search meanwhile goes on with the
    models serving now. Recalibrating afterwards is then one pass over the vectors.
    """
    state = _state(indexes)
    if embedder.name in state.backgrounds:
        return
    texts = background_texts()
    if len(texts) < MIN_BACKGROUND:
        return
    found = _embed_background(embedder, texts)
    with state.lock:
        state.backgrounds.setdefault(embedder.name, found)


def _stale(
    before: dict[str, int], counts: dict[str, int], moved: dict[str, int] | None = None
) -> bool:
    """Say whether a calibration computed on ``before`` passages is out of date at ``counts``,
    ``moved`` passages per model written or dropped since (an edit that keeps a campaign's
    passage count changes the library's texts all the same)."""
    if before.keys() != counts.keys():
        return True
    for name, count in counts.items():
        then = before[name]
        change = max(abs(count - then), (moved or {}).get(name, 0))
        if change and (
            max(count, then) < SMALL_CORPUS_PASSAGES or change > RECALIBRATE_SHARE * then
        ):
            return True
    return False


def _counts(indexes: SearchIndexes, serving: list[Embedder]) -> dict[str, int]:
    return {e.name: len(indexes.vectors[e.name]) for e in serving}


def _changes(indexes: SearchIndexes, serving: list[Embedder]) -> dict[str, int]:
    return {e.name: indexes.vectors[e.name].changed_rows for e in serving}


def _moved(calibrated: Calibrated, indexes: SearchIndexes) -> dict[str, int]:
    """Return the passages each model's index wrote or dropped since ``calibrated``."""
    return {
        name: indexes.vectors[name].changed_rows - then for name, then in calibrated.changes.items()
    }


def calibration(indexes: SearchIndexes) -> Calibration | None:
    """Return the floors for the current corpus; None when there is nothing to calibrate on."""
    found = current(indexes)
    return None if found is None else found.calibration


def current(indexes: SearchIndexes) -> Calibrated | None:
    """Return the calibration for the current corpus with the centroids and library rows it was
    computed with (hand it to ``model_scores``); None when there is nothing to calibrate on.

    Never waits for a recalibration: when the corpus has moved, returns the last calibration
    and starts the background one (``_start_refresh``). Computes one here, on the caller's
    thread, only when there is none for the serving models.
    """
    state = _state(indexes)
    serving = backfill.serving(indexes)  # a model still filling is not judged either
    counts = _counts(indexes, serving)
    if not any(counts.values()):
        return None
    last = state.current
    if last is not None and last.counts.keys() == counts.keys():
        if not _stale(last.counts, counts, _moved(last, indexes)):
            return last
        if RECALIBRATE_IN_BACKGROUND:
            _start_refresh(state, indexes)
            return last
    return _recompute(state, indexes)


def _start_refresh(state: _FloorState, indexes: SearchIndexes) -> None:
    """Start the background recalibration unless one runs or the last one failed just now."""
    with state.lock:
        if state.refresh is not None and state.refresh.is_alive():
            return  # a write meanwhile leaves it stale: a search after it starts the next one
        if state.failed_at is not None and time.monotonic() - state.failed_at < RETRY_AFTER_S:
            return
        # The library texts are read from the database: the thread needs the app, not a request.
        app: Flask | None = None
        if has_app_context():
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        thread = threading.Thread(
            target=_refresh_in_background,
            args=(state, indexes, app),
            name="kb-floor-calibration",
            daemon=True,  # an exit does not wait for seconds of embedding
        )
        state.refresh = thread
        thread.start()


def _refresh_in_background(state: _FloorState, indexes: SearchIndexes, app: Flask | None) -> None:
    time.sleep(RECALIBRATE_DELAY_S)
    try:
        if app is None:
            _recompute(state, indexes)
        else:
            with app.app_context():
                _recompute(state, indexes, in_background=True)
    except Exception:
        state.failed_at = time.monotonic()
        log.exception(
            "相关性门槛的后台重新校准失败，搜索继续用上一次的校准（%.0f 秒后再试）", RETRY_AFTER_S
        )
    else:
        state.failed_at = None


def wait_for_recalibration(indexes: SearchIndexes, timeout: float | None = None) -> bool:
    """Wait for the running background recalibration, if any; return whether none runs now."""
    thread = _state(indexes).refresh
    if thread is not None:
        thread.join(timeout)
    return thread is None or not thread.is_alive()


def _recompute(
    state: _FloorState, indexes: SearchIndexes, *, in_background: bool = False
) -> Calibrated | None:
    """Compute the calibration for the corpus as it is now and swap it in; return it.

    One computation at a time: a caller that waited for another one returns its result when
    it still fits the corpus instead of computing the same again.
    """
    with state.computing:
        serving = backfill.serving(indexes)
        # Before the computation: a write meanwhile leaves the new calibration stale.
        counts, changes = _counts(indexes, serving), _changes(indexes, serving)
        if not any(counts.values()):
            return None
        last = state.current
        if last is not None and not _stale(last.counts, counts, _moved(last, indexes)):
            return last
        fresh = None
        if last is None:  # this process's first: another process may have computed it
            fresh = _read_stored(state, indexes, serving, counts, changes)
        if fresh is None:
            fresh = _compute(state, indexes, serving, counts, changes, in_background=in_background)
            if fresh is not None:
                _write_stored(indexes, serving, fresh)
        if fresh is not None:
            with state.lock:
                state.current = fresh
        return fresh


def stored_file(indexes: SearchIndexes, serving: list[Embedder]) -> Path:
    """Return where this host keeps the calibration for these models (names and dimensions)."""
    models = "+".join(f"{e.name}-{e.dim}" for e in serving)
    return indexes.data_dir / "relevance" / f"calibration-{models}.npz"


@functools.cache
def _fingerprint() -> str:
    """Hash what a calibration is computed from besides the corpus: the background and
    neighbouring texts and the code that turns their scores into floors (search/relevance.py)."""
    digest = hashlib.sha256(Path(relevance.__file__).read_bytes())
    for text in [*background_texts(), *background_texts(ADJACENT_PATH)]:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def _read_stored(
    state: _FloorState,
    indexes: SearchIndexes,
    serving: list[Embedder],
    counts: dict[str, int],
    changes: dict[str, int],
) -> Calibrated | None:
    """Return the calibration another process of this host stored, if it still fits the corpus.

    At 100,000 campaigns a calibration is two scans of 675,000 passages for 73 background
    queries each (≈ 10-18 s on a 2-core box): a worker that starts, or restarts, on the corpus
    another one calibrated reads the floors and centroids instead (milliseconds) and only
    gathers the library texts. It fits as a calibration of this process would: computed by the
    same code and background texts, on passage counts this one would not recalibrate from.
    """
    path = stored_file(indexes, serving)
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            centroids = {e.name: np.asarray(stored[f"centroid_{e.name}"]) for e in serving}
    except (OSError, KeyError, ValueError) as error:
        if path.exists():
            log.warning("相关性门槛的校准文件 %s 读不出，将重新计算：%s", path, error)
        return None
    if (
        meta.get("fingerprint") != _fingerprint()
        or _stale(meta.get("counts", {}), counts)
        or any(centroids[e.name].shape != (e.dim,) for e in serving)
    ):
        return None
    # model_scores compares each query with the background texts too (kb/prefork.py pins them).
    if any(_background(state, embedder) is None for embedder in serving):
        return None
    texts = _library_texts(state, indexes, [e.name for e in serving])
    return Calibrated(
        calibration=Calibration(**meta["calibration"]),
        counts=counts,
        changes=changes,
        centroids={name: vector.astype(np.float32) for name, vector in centroids.items()},
        library=_embed_library(state, indexes, serving, texts),
    )


def _write_stored(indexes: SearchIndexes, serving: list[Embedder], found: Calibrated) -> None:
    """Store a calibration for the host's other processes and the next start (see _read_stored)."""
    path = stored_file(indexes, serving)
    meta = {
        "fingerprint": _fingerprint(),
        "counts": found.counts,
        "calibration": asdict(found.calibration),
    }
    arrays: dict[str, Any] = {f"centroid_{n}": vector for n, vector in found.centroids.items()}
    arrays["meta"] = np.array(json.dumps(meta))
    # On a read-only or full disk the next process computes its own.
    _save_whole(path, arrays, "相关性门槛的校准")


def _compute(
    state: _FloorState,
    indexes: SearchIndexes,
    serving: list[Embedder],
    counts: dict[str, int],
    changes: dict[str, int],
    *,
    in_background: bool,
) -> Calibrated | None:
    """Compute a calibration (``computing`` held); None without enough background texts."""
    texts = _library_texts(state, indexes, [e.name for e in serving])
    if in_background:
        # The only database read: end its transaction before seconds of embedding, so the
        # thread holds no connection (nor a lock a migration or a test's cleanup waits for).
        db.session.remove()
    samples: list[list[ModelScores]] | None = None
    centroids: dict[str, Vectors] = {}
    for embedder in serving:
        background = _background(state, embedder)
        if background is None:
            return None
        index = indexes.vectors[embedder.name]
        centroid = centroids[embedder.name] = index.centroid()
        tops = index.search_many(background.queries, limit=1)
        cosines = background.queries @ background.passages.T
        affinities = background.queries @ centroid
        if samples is None:
            samples = [[] for _ in tops]
        for i, top in enumerate(tops):
            samples[i].append(
                ModelScores(
                    scores=top,
                    background=cosines[i].astype(np.float64),
                    centroid=float(affinities[i]),
                )
            )
    found = calibrate(samples or [])
    if found is None:
        return None
    return Calibrated(
        calibration=found,
        counts=counts,
        changes=changes,
        centroids=centroids,
        library=_embed_library(state, indexes, serving, texts),
    )


def _library_texts(state: _FloorState, indexes: SearchIndexes, models: list[str]) -> list[str]:
    """Return the library's texts for the contrast test; none outside an app (no database).

    Each campaign's texts are kept with its version (SQLAlchemy bumps it on every update): a
    recalibration after a write reads the ids and versions in one query and loads and rebuilds
    only the campaigns that are new or changed (was: every sampled campaign, ≈ 84 ms on the demo's
    next search after any write).
    """
    if not has_app_context() or not models:
        return []
    ids = sorted(set.intersection(*(indexes.vectors[name].campaigns() for name in models)))
    if len(ids) > LIBRARY_CAMPAIGNS:  # spread over the range: old and new campaigns alike
        step = len(ids) / LIBRARY_CAMPAIGNS
        ids = [ids[int(i * step)] for i in range(LIBRARY_CAMPAIGNS)]
    rows = db.session.execute(
        sa.select(Campaign.id, Campaign.version).where(
            Campaign.id.in_(ids), Campaign.deleted_at.is_(None)
        )
    )
    versions: dict[int, int] = {row.id: row.version for row in rows}
    known = state.campaign_texts
    changed = [cid for cid, version in versions.items() if known.get(cid, (None,))[0] != version]
    for campaign in load_live(changed) if changed else []:
        texts = library_queries([campaign_text(campaign)])
        known[campaign.id] = (campaign.version, texts)
    # Only the sampled live campaigns: a deleted one's texts do not linger.
    state.campaign_texts = {cid: known[cid] for cid in sorted(versions) if cid in known}
    found: dict[str, None] = {}
    for _, texts in state.campaign_texts.values():  # as library_queries over all: id order
        found.update(dict.fromkeys(texts))
        if len(found) >= LIBRARY_QUERIES:
            break
    return list(found)[:LIBRARY_QUERIES]


def _embed_library(
    state: _FloorState, indexes: SearchIndexes, serving: list[Embedder], texts: list[str]
) -> dict[str, Vectors]:
    """Embed the library's texts that each serving model has not embedded yet; return the rows.

    What one process embedded is written to the data directory (``library_file``), so the other
    workers of the host and the next start read it instead of embedding it again (≈ 20 s with
    e5 for the demo's 614 texts on a busy 2-core box, against milliseconds to read).
    """
    library: dict[str, Vectors] = {}
    for embedder in serving:
        known = state.library_vectors.get(embedder.name)
        if known is None:
            known = _read_library(library_file(indexes, embedder), embedder.dim)
        missing = [t for t in texts if t not in known]
        if missing:
            known.update(zip(missing, _unit(embedder.encode_queries(missing)), strict=True))
        # Only the current texts: an edited or deleted campaign's old lines do not pile up.
        known = {t: known[t] for t in texts}
        state.library_vectors[embedder.name] = known
        if missing:
            _write_library(library_file(indexes, embedder), known, embedder.dim)
        rows = [known[t] for t in texts]
        library[embedder.name] = (
            np.vstack(rows) if rows else np.zeros((0, embedder.dim), dtype=np.float32)
        )
    return library


def library_file(indexes: SearchIndexes, embedder: Embedder) -> Path:
    """Return where this host keeps a model's library vectors (by name and dimension, as the
    passage embeddings are: another model under the same name and size is not told apart)."""
    return indexes.data_dir / "relevance" / f"library-{embedder.name}-{embedder.dim}.npz"


def _read_library(path: Path, dim: int) -> dict[str, Vectors]:
    """Return the vectors stored at ``path``; none when it is missing, unreadable or of another size."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            texts, vectors = stored["texts"], stored["vectors"]
    except (OSError, KeyError, ValueError) as error:
        if path.exists():
            log.warning("相关性门槛的库文本向量 %s 读不出，将重新计算：%s", path, error)
        return {}
    if vectors.ndim != 2 or vectors.shape != (len(texts), dim):
        return {}
    return dict(zip(texts.tolist(), _unit(vectors), strict=True))


def _write_library(path: Path, vectors: dict[str, Vectors], dim: int) -> None:
    """Write the vectors whole (a read-only or full disk: this process keeps its own copy)."""
    rows = np.vstack(list(vectors.values())) if vectors else np.zeros((0, dim), np.float32)
    arrays = {"texts": np.array(list(vectors), dtype=str), "vectors": rows}
    _save_whole(path, arrays, "相关性门槛的库文本向量")


def _save_whole(path: Path, arrays: dict[str, Any], what: str) -> None:
    """Write ``arrays`` to ``path`` (.npz) through a temporary file: a reader never sees half of
    it. A failure is logged with ``what`` the file holds, not raised: the file is a cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npz")
    try:
        np.savez(partial, **arrays)
        os.replace(partial, path)
    except OSError as error:
        log.warning("%s写不进 %s：%s", what, path, error)
        partial.unlink(missing_ok=True)


def library_sizes(indexes: SearchIndexes) -> dict[str, int]:
    """Return how many library texts each model compares queries with (0: no contrast yet)."""
    last = _state(indexes).current
    return {} if last is None else {name: len(rows) for name, rows in last.library.items()}


def recalibrate(indexes: SearchIndexes) -> None:
    """Drop the calibration so the next search redoes it (after changing the quantiles).

    The stored ones go too: they were computed with the quantiles as they were.
    """
    state = _state(indexes)
    with state.lock:
        state.current = None
    for path in (indexes.data_dir / "relevance").glob("calibration-*.npz"):
        path.unlink(missing_ok=True)


def model_scores(
    calibrated: Calibrated,
    indexes: SearchIndexes,
    embedder: Embedder,
    query_vector: Vectors,
    scores: list[tuple[int, float]],
) -> ModelScores | None:
    """Return one model's evidence for a query, against ``calibrated`` (from ``current``).

    The caller passes the calibration it will judge with: a background swap between the two
    calls must not pair the old floors with the new centroid and library rows.
    """
    background = _state(indexes).backgrounds.get(embedder.name)
    centroid = calibrated.centroids.get(embedder.name)
    if background is None or centroid is None:
        return None
    vector = _unit(np.asarray(query_vector).reshape(1, -1))[0]
    library = calibrated.library.get(embedder.name)
    return ModelScores(
        scores=scores,
        background=(background.passages @ vector).astype(np.float64),
        centroid=float(vector @ centroid),
        contrast=None if library is None else contrast(vector, library, background.contrast),
        model=embedder.name,
        query=vector,
    )
