"""The relevance floor's state in this process: background embeddings and corpus calibration.

The background texts are embedded once per model and process (as passages, and as queries
for the calibration: e5 embeds the two with different prompts), ≈ 2-8 s for e5 on the first
semantic search. The calibration depends on the corpus: it is redone when a model's number of
live passages has moved (by more than RECALIBRATE_SHARE on a large corpus, where it costs one
pass over the vectors, ≈ 0.1-0.2 s at 10k campaigns).

The contrast test (search/relevance.py) also needs the library's own short texts (titles, goals,
lesson lines) embedded as queries: read from the database at calibration, at most
LIBRARY_CAMPAIGNS campaigns spread over the id range, each text embedded once per host and
model (≈ 20 s with e5 for the demo's 614 texts on a busy 2-core box, then only a new campaign's
dozen) and kept in the data directory for the other workers and the next start. Each campaign's
texts are kept with its version, so a recalibration after a write reads only the campaigns that
changed.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from flask import has_app_context

from kb.extensions import db
from kb.models import Campaign
from kb.searching import backfill
from kb.searching.documents import campaign_text
from kb.searching.indexer import SearchIndexes, load_live
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


@dataclass(slots=True)
class _Background:
    passages: Vectors  # (n, dim), unit rows
    queries: Vectors  # (n, dim), unit rows
    # The far-off texts and the neighbouring topics (search/data/adjacent_topics.txt), as queries.
    contrast: Vectors


@dataclass(slots=True)
class _FloorState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    backgrounds: dict[str, _Background] = field(default_factory=dict)
    centroids: dict[str, Vectors] = field(default_factory=dict)
    calibration: Calibration | None = None
    calibrated_at: dict[str, int] = field(default_factory=dict)  # model -> live passages
    # The library's texts as queries: per model, text -> unit vector (kept across calibrations
    # so a new campaign costs only its own texts), and the rows of the current calibration.
    library_vectors: dict[str, dict[str, Vectors]] = field(default_factory=dict)
    library: dict[str, Vectors] = field(default_factory=dict)
    # Campaign id -> (its version, its library texts): only a changed campaign is read again.
    campaign_texts: dict[int, tuple[int, list[str]]] = field(default_factory=dict)


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


def _stale(state: _FloorState, counts: dict[str, int]) -> bool:
    if state.calibration is None or state.calibrated_at.keys() != counts.keys():
        return True
    for name, count in counts.items():
        before = state.calibrated_at[name]
        if count != before and (
            max(count, before) < SMALL_CORPUS_PASSAGES
            or abs(count - before) > RECALIBRATE_SHARE * before
        ):
            return True
    return False


def calibration(indexes: SearchIndexes) -> Calibration | None:
    """Return the floors for the current corpus; None when there is nothing to calibrate on."""
    state = _state(indexes)
    with state.lock:
        serving = backfill.serving(indexes)  # a model still filling is not judged either
        counts = {e.name: len(indexes.vectors[e.name]) for e in serving}
        if not any(counts.values()):
            return None
        if not _stale(state, counts):
            return state.calibration
        samples: list[list[ModelScores]] | None = None
        for embedder in serving:
            background = _background(state, embedder)
            if background is None:
                return None
            index = indexes.vectors[embedder.name]
            centroid = index.centroid()
            state.centroids[embedder.name] = centroid
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
        state.calibration = calibrate(samples or [])
        state.calibrated_at = counts
        _embed_library(state, indexes, serving)
        return state.calibration


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


def _embed_library(state: _FloorState, indexes: SearchIndexes, serving: list[Embedder]) -> None:
    """Embed the library's texts that each serving model has not embedded yet (lock held).

    What one process embedded is written to the data directory (``library_file``), so the other
    workers of the host and the next start read it instead of embedding it again (≈ 20 s with
    e5 for the demo's 614 texts on a busy 2-core box, against milliseconds to read).
    """
    texts = _library_texts(state, indexes, [e.name for e in serving])
    state.library = {}
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
        state.library[embedder.name] = (
            np.vstack(rows) if rows else np.zeros((0, embedder.dim), dtype=np.float32)
        )


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
    """Write the vectors whole through a temporary file: a reader never sees half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.vstack(list(vectors.values())) if vectors else np.zeros((0, dim), np.float32)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npz")
    try:
        np.savez(partial, texts=np.array(list(vectors), dtype=str), vectors=rows)
        os.replace(partial, path)
    except OSError as error:  # a read-only or full disk: this process keeps its own copy
        log.warning("相关性门槛的库文本向量写不进 %s：%s", path, error)
        partial.unlink(missing_ok=True)


def library_sizes(indexes: SearchIndexes) -> dict[str, int]:
    """Return how many library texts each model compares queries with (0: no contrast yet)."""
    state = _state(indexes)
    with state.lock:
        return {name: len(rows) for name, rows in state.library.items()}


def recalibrate(indexes: SearchIndexes) -> None:
    """Drop the calibration so the next search redoes it (after changing the quantiles)."""
    state = _state(indexes)
    with state.lock:
        state.calibration = None


def model_scores(
    indexes: SearchIndexes,
    embedder: Embedder,
    query_vector: Vectors,
    scores: list[tuple[int, float]],
) -> ModelScores | None:
    """Return one model's evidence for a query (call ``calibration`` first)."""
    state = _state(indexes)
    background = state.backgrounds.get(embedder.name)
    centroid = state.centroids.get(embedder.name)
    if background is None or centroid is None:
        return None
    vector = _unit(np.asarray(query_vector).reshape(1, -1))[0]
    library = state.library.get(embedder.name)
    return ModelScores(
        scores=scores,
        background=(background.passages @ vector).astype(np.float64),
        centroid=float(vector @ centroid),
        contrast=None if library is None else contrast(vector, library, background.contrast),
        model=embedder.name,
        query=vector,
    )
