"""The relevance floor's state in this process: background embeddings and corpus calibration.

The background texts are embedded once per model and process (as passages, and as queries
for the calibration: e5 embeds the two with different prompts), ≈ 2-8 s for e5 on the first
semantic search. The calibration depends on the corpus: it is redone when a model's number of
live passages has moved (by more than RECALIBRATE_SHARE on a large corpus, where it costs one
pass over the vectors, ≈ 0.1-0.2 s at 10k campaigns).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

from kb.searching import backfill
from kb.searching.indexer import SearchIndexes
from search.embedder import Embedder, Vectors
from search.relevance import (
    MIN_BACKGROUND,
    Calibration,
    ModelScores,
    background_texts,
    calibrate,
)

# Recalibrate on any change below this many passages; above it, on a change of this share.
SMALL_CORPUS_PASSAGES = 20_000
RECALIBRATE_SHARE = 0.02


@dataclass(slots=True)
class _Background:
    passages: Vectors  # (n, dim), unit rows
    queries: Vectors  # (n, dim), unit rows


@dataclass(slots=True)
class _FloorState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    backgrounds: dict[str, _Background] = field(default_factory=dict)
    centroids: dict[str, Vectors] = field(default_factory=dict)
    calibration: Calibration | None = None
    calibrated_at: dict[str, int] = field(default_factory=dict)  # model -> live passages


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
        found = _Background(
            passages=_unit(embedder.encode_passages(texts)),
            queries=_unit(embedder.encode_queries(texts)),
        )
        state.backgrounds[embedder.name] = found
    return found


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
    found = _Background(
        passages=_unit(embedder.encode_passages(texts)),
        queries=_unit(embedder.encode_queries(texts)),
    )
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
        return state.calibration


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
    return ModelScores(
        scores=scores,
        background=(background.passages @ vector).astype(np.float64),
        centroid=float(vector @ centroid),
    )
