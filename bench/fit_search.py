"""Fit search's ranking knobs by leave-one-set-out cross-validation over every labelled set.

Usage: python bench/fit_search.py [--data-dir DIR] [--models e5,use] [--check] [--captures FILE]
       [--kinds | --per-query | --keyword | --passages]

The knobs, fitted on the sets and applied to every query alike unless said otherwise:
- how a campaign's score is built from its passages' cosines, per model: best passage plus a
  share of the mean of the next ones (``depth`` passages in all), optionally with the cosine to
  the campaign's mean passage vector counted as one more passage;
- the fusion: keyword weight against the models' combination, each model's weight, z-score or
  RRF, the z-score penalty for a campaign a source did not return;
- ``--kinds``: a keyword weight per fusion kind, a class of queries the product tells from the
  query text alone (an outcome condition parsed, else the script it is written in);
- ``--per-query``: a keyword weight per query, picked by a small ridge model from what the query
  and the two retrievers' lists show before fusion (nested cross-validation), then min-max
  instead of z-score fusion, and outcome queries ranked by keyword side and condition first.

Every query of every in-scope set in bench/data (search_devset.json, search_heldout*.json) is
captured once through the product's own pieces (analysis, concept cues, keyword index, query
embeddings, relevance floor, outcome conditions); then each configuration is replayed over the
captures in NumPy, exactly as ``kb.searching.service.search`` ranks (``--check`` compares the
replay of the shipped configuration with the real search, query by query). Leave-one-set-out:
for each set, the configuration with the best mean nDCG@10 on the other sets is scored on that
set, the mean taken two ways: over the training sets' means (each set weighs the same) and over
their queries (the largest set weighs most); every fold and every query type is printed. All these sets
have been seen: every figure is a dev figure, the held-out fold figures included.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_search import K, make_app, ndcg  # noqa: E402  # after the path setup

DATA = ROOT / "bench" / "data"
SETS = (
    "search_devset.json",
    "search_heldout.json",
    "search_heldout2.json",
    "search_heldout3.json",
    "search_heldout5.json",
    "search_heldout6.json",
    "search_heldout7.json",
    "search_heldout8.json",
)
Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Aggregation:
    """A campaign's score from its passage cosines: best + share × mean(max(next, 0))."""

    share: float = 0.1
    depth: int = 2  # passages counted: the best and depth - 1 after it
    centroid: bool = False  # the campaign's mean passage vector counts as one more passage

    def label(self) -> str:
        return f"{self.share:g}/{self.depth}{'c' if self.centroid else ''}"


@dataclass(frozen=True, slots=True)
class Config:
    """One setting of every knob."""

    aggregation: tuple[tuple[str, Aggregation], ...]
    keyword_weight: float = 0.35
    model_weights: tuple[tuple[str, float], ...] = ()
    method: str = "zscore"
    rrf_k: int = 60
    missing_margin: float = 0.5
    # Keyword weight per query kind (fusion_kind), overriding keyword_weight for that kind.
    kind_keyword: tuple[tuple[str, float], ...] = ()
    outcome_weight: float | None = None  # None: the shipped OUTCOME_WEIGHT

    def label(self) -> str:
        agg = " ".join(f"{m}:{a.label()}" for m, a in self.aggregation)
        weights = " ".join(f"{m}={w:g}" for m, w in self.model_weights)
        fusion = {
            "zscore": f"z m{self.missing_margin:g}",
            "minmax": f"minmax m{self.missing_margin:g}",
        }.get(self.method, f"rrf k{self.rrf_k}")
        kinds = "".join(f" kw[{k}]={w:g}" for k, w in self.kind_keyword)
        outcome = "" if self.outcome_weight is None else f" outcome={self.outcome_weight:g}"
        return f"agg[{agg}] kw={self.keyword_weight:g}{kinds} {weights} {fusion}{outcome}"

    def keyword_weight_for(self, kind: str) -> float:
        return dict(self.kind_keyword).get(kind, self.keyword_weight)


@dataclass(slots=True)
class ModelCapture:
    """One model's view of one query: its unit vector (query prompt, and passage prompt)."""

    query: Floats
    as_passage: Floats  # the query embedded as a passage (e5's prompts differ)
    # The relevance floor's contrast with neighbouring topics (search/relevance.py): no knob here
    # changes it, so it is taken as the floor computes it (None: no contrast test).
    contrast: float | None = None


@dataclass(slots=True)
class Capture:
    """What one query gives the ranking, before any knob applies."""

    item: dict[str, Any]
    set_name: str
    allowed: set[int] | None
    keyword: list[tuple[int, float]]
    keyword_terms: dict[int, tuple[str, ...]]
    keep_by_keyword: set[int]
    word_matched: bool
    outcome: dict[int, float] | None  # campaign -> strength of the outcome condition
    models: dict[str, ModelCapture] = field(default_factory=dict)
    # No words: the filtered listing, which no knob changes (its nDCG@10, from the real search).
    listing: float | None = None
    search_args: tuple[str, Any] | None = None  # the keyword search's words and filters


@dataclass(slots=True)
class Corpus:
    """Per model: the passage rows, each campaign's block (padded for sorting), mean vectors."""

    owners: dict[str, npt.NDArray[np.int64]]
    padded: dict[str, npt.NDArray[np.intp]]  # (blocks, longest) row index, -1 for padding
    means: dict[str, Floats]  # (blocks, dim) unit mean passage vector per campaign
    rows: dict[str, Floats]
    centroid: dict[str, Floats]  # mean of every passage row (the floor's corpus affinity)
    external: dict[int, str]


def corpus_of_blocks(
    blocks: dict[str, list[tuple[int, Floats]]], external: dict[int, str]
) -> Corpus:
    """Build a corpus from per-model (campaign id, (n, dim) unit rows) blocks."""
    owners, padded, means, all_rows, centroid = {}, {}, {}, {}, {}
    for name, found in blocks.items():
        found = sorted(found, key=lambda b: b[0])
        lengths = np.array([len(r) for _, r in found])
        starts = np.cumsum(lengths) - lengths
        rows = np.concatenate([r for _, r in found]).astype(np.float32)
        pad = np.full((len(found), int(lengths.max())), -1, dtype=np.intp)
        block_means = np.zeros((len(found), rows.shape[1]), dtype=np.float32)
        for b, (start, length) in enumerate(zip(starts, lengths, strict=True)):
            pad[b, :length] = np.arange(start, start + length)
            mean = rows[start : start + length].mean(axis=0)
            block_means[b] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        owners[name] = np.array([cid for cid, _ in found], dtype=np.int64)
        padded[name] = pad
        means[name] = block_means
        all_rows[name] = rows
        centroid[name] = rows.mean(axis=0, dtype=np.float64).astype(np.float32)
    return Corpus(owners, padded, means, all_rows, centroid, external)


def corpus_of(indexes: Any, external: dict[int, str]) -> Corpus:
    """The corpus the index serves now."""
    from search.vector import widened

    blocks: dict[str, list[tuple[int, Floats]]] = {}
    for name, index in indexes.vectors.items():
        state = index._snapshot()
        rows = widened(state.rows_between(0, state.rows))
        blocks[name] = [
            (int(state.owners[b]), rows[state.starts[b] : state.starts[b] + state.lengths[b]])
            for b in np.flatnonzero(state.alive[: state.blocks])
        ]
    return corpus_of_blocks(blocks, external)


def corpus_of_passages(app: Any, split: Any, external: dict[int, str], cache_dir: Path) -> Corpus:
    """A corpus of other passages (``split``: CampaignText -> texts), embedded by each model.

    Vectors are kept in ``cache_dir`` by a hash of model and text, so a rerun embeds nothing new.
    """
    import hashlib

    from kb.extensions import db
    from kb.models import Campaign
    from kb.searching import backfill
    from kb.searching.documents import campaign_text
    from kb.searching.indexer import get_indexes, load_live
    from search.vector import to_stored, widened

    with app.app_context():
        indexes = get_indexes()
        ids = [c.id for c in db.session.query(Campaign).filter(Campaign.deleted_at.is_(None))]
        texts = {t.id: split(t) for t in map(campaign_text, load_live(ids))}
        blocks: dict[str, list[tuple[int, Floats]]] = {}
        for embedder in backfill.serving(indexes):
            cache_dir.mkdir(parents=True, exist_ok=True)

            def path(text: str, name: str = embedder.name) -> Path:
                digest = hashlib.sha1(f"{name}\n{text}".encode(), usedforsecurity=False)
                return cache_dir / f"{digest.hexdigest()}.npy"

            missing = sorted({t for ts in texts.values() for t in ts if not path(t).exists()})
            for start in range(0, len(missing), 32):
                batch = missing[start : start + 32]
                for text, vector in zip(batch, embedder.encode_passages(batch), strict=True):
                    np.save(path(text), np.asarray(vector, dtype=np.float32))
            found = []
            for cid, ts in texts.items():
                rows = np.stack([np.load(path(t)) for t in ts]).astype(np.float32)
                rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
                found.append((cid, widened(to_stored(rows))))
            blocks[embedder.name] = found
    return corpus_of_blocks(blocks, external)


def aggregate(
    cosines: Floats, centroid_cosines: Floats, pad: npt.NDArray[np.intp], agg: Aggregation
) -> Floats:
    """Return each campaign's score under ``agg`` (one row of cosines per query)."""
    values = np.where(pad >= 0, cosines[..., np.maximum(pad, 0)], -np.inf)
    if agg.centroid:
        values = np.concatenate([values, centroid_cosines[..., None]], axis=-1)
    values = -np.sort(-values, axis=-1)
    best = values[..., 0]
    if agg.depth < 2 or agg.share == 0:
        return best.astype(np.float32)
    rest = values[..., 1 : agg.depth]
    if rest.shape[-1] < agg.depth - 1:  # fewer passages anywhere than the depth: missing = 0
        rest = np.concatenate(
            [rest, np.zeros((*rest.shape[:-1], agg.depth - 1 - rest.shape[-1]))], axis=-1
        )
    bonus = np.maximum(np.where(np.isfinite(rest), rest, 0.0), 0.0).mean(axis=-1)
    scores: Floats = (best + np.float32(agg.share) * bonus).astype(np.float32)
    return scores


def ranked(
    owners: npt.NDArray[np.int64], scores: Floats, allowed: set[int] | None
) -> list[tuple[int, float]]:
    """Return (campaign, score) best first, ties by id, as the vector index does."""
    from kb.searching.service import CANDIDATES

    keep = np.arange(len(owners))
    if allowed is not None:
        keep = np.flatnonzero(np.isin(owners, np.fromiter(allowed, dtype=np.int64)))
    order = keep[np.lexsort((owners[keep], -scores[keep]))][:CANDIDATES]
    return [(int(owners[i]), float(scores[i])) for i in order]


def capture(app: Any, sets: dict[str, list[dict[str, Any]]]) -> tuple[list[Capture], Corpus, Any]:
    """Run every query once through the product's pieces; return captures, corpus and floor."""
    from kb.extensions import db
    from kb.models import Campaign
    from kb.searching import backfill, floor
    from kb.searching import service as svc
    from kb.searching.indexer import get_indexes
    from kb.searching.schemas import validate_search_query
    from search import concepts, relevance
    from search.embedder import query_cache
    from search.keyword import query_terms
    from search.outcomes import match_outcome, parse_outcome

    captures: list[Capture] = []
    with app.app_context():
        indexes = get_indexes()
        indexes.sync_vectors()
        external = {c.id: c.external_id or "" for c in db.session.query(Campaign).all()}
        corpus = corpus_of(indexes, external)
        calibrated = floor.current(indexes)  # embeds the background texts once per model
        assert calibrated is not None, "no calibration: too few background texts or no vectors"
        state = floor._state(indexes)
        backgrounds = {name: (b.queries, b.passages) for name, b in state.backgrounds.items()}
        serving = backfill.serving(indexes)
        count = indexes.keyword.count()
        all_ids = sorted(external)
        for set_name, queries in sets.items():
            for item in queries:
                args = {"q": item["query"], "mode": "hybrid", "limit": K, **item.get("filters", {})}
                query = validate_search_query(args)
                if not query.q.strip():
                    listing = svc.search(query)
                    ranked_ids = [r.campaign.external_id or "" for r in listing.results]
                    captures.append(
                        Capture(
                            item,
                            set_name,
                            None,
                            [],
                            {},
                            set(),
                            False,
                            None,
                            listing=ndcg(ranked_ids, item["relevant"]),
                        )
                    )
                    continue
                filters = svc.filters_from(query)
                text = query.q.strip()
                intent = parse_outcome(text, svc._catalog_lookup, svc._METRIC_ALIASES)
                words = intent.residual_query if intent and intent.residual_query else text
                own_terms = query_terms(words)
                expansions = concepts.expand(text) if query.expand else ()
                if expansions:
                    words = f"{words} {' '.join(expansions)}"
                meaning = f"{text}（{'、'.join(expansions)}）" if expansions else text
                allowed = indexes.keyword.matching_ids(filters)
                found = indexes.keyword.search(words, filters=filters, limit=svc.CANDIDATES)
                terms = {h.campaign_id: svc.relevance_terms(h.terms) for h in found.hits}
                outcome = None
                if intent is not None:
                    facts = indexes.facts.facts(all_ids)
                    outcome = {cid: match_outcome(intent, facts.get(cid, ())) for cid in all_ids}
                cap = Capture(
                    item=item,
                    set_name=set_name,
                    allowed=allowed,
                    keyword=[(h.campaign_id, h.score) for h in found.hits],
                    keyword_terms=terms,
                    keep_by_keyword=relevance.keyword_evidence(own_terms, [*terms.items()], count),
                    word_matched=relevance.words_matched(own_terms, terms.values()),
                    outcome=outcome,
                    search_args=(words, filters),
                )
                for embedder in serving:
                    vector = query_cache(embedder).encode(meaning)
                    as_passage = embedder.encode_passages([meaning])[0]
                    evidence = floor.model_scores(calibrated, indexes, embedder, vector, [])
                    cap.models[embedder.name] = ModelCapture(
                        unit(vector),
                        unit(as_passage),
                        getattr(evidence, "contrast", None),
                    )
                captures.append(cap)
    return captures, corpus, backgrounds


def unit(vector: Any) -> Floats:
    row = np.asarray(vector, dtype=np.float32).reshape(-1)
    return row / max(float(np.linalg.norm(row)), 1e-12)


class Replay:
    """Rank captured queries under a configuration, as the search service does."""

    def __init__(
        self,
        captures: list[Capture],
        corpus: Corpus,
        backgrounds: dict[str, tuple[Floats, Floats]],
        *,
        query_prompt: dict[str, bool] | None = None,
    ) -> None:
        """``query_prompt``: per model, False embeds queries (and the floor's background
        queries) with the passage prompt instead of the query prompt."""
        self.captures = captures
        self.corpus = corpus
        self.backgrounds = {}
        self._calibrations: dict[Any, Any] = {}
        self._model_rankings: dict[tuple[str, Aggregation], list[list[tuple[int, float]]]] = {}
        self.cosines: dict[str, Floats] = {}
        self.centroid_cosines: dict[str, Floats] = {}
        self.background: dict[str, npt.NDArray[np.float64]] = {}
        self.affinity: dict[str, npt.NDArray[np.float64]] = {}
        with_words = [c for c in captures if c.listing is None]
        for name, (queries, passages) in backgrounds.items():
            prompt = (query_prompt or {}).get(name, True)
            self.backgrounds[name] = (queries if prompt else passages, passages)
            q = np.stack(
                [c.models[name].query if prompt else c.models[name].as_passage for c in with_words]
            )
            self.cosines[name] = q @ corpus.rows[name].T
            self.centroid_cosines[name] = q @ corpus.means[name].T
            self.background[name] = (q @ passages.T).astype(np.float64)
            self.affinity[name] = (q @ corpus.centroid[name]).astype(np.float64)
        self._row: dict[int, int] = {}
        for c in captures:
            if c.listing is None:
                self._row[id(c)] = len(self._row)
        # Background texts as queries against the corpus (cosines once per model).
        self._bg_cosines = {
            name: queries @ corpus.rows[name].T for name, (queries, _) in self.backgrounds.items()
        }
        self._bg_centroid = {
            name: queries @ corpus.means[name].T for name, (queries, _) in self.backgrounds.items()
        }

    def calibration(self, aggregation: tuple[tuple[str, Aggregation], ...]) -> Any:
        from search.relevance import ModelScores, calibrate

        if aggregation not in self._calibrations:
            samples: list[list[ModelScores]] = []
            for name, agg in aggregation:
                queries, passages = self.backgrounds[name]
                scores = aggregate(
                    self._bg_cosines[name], self._bg_centroid[name], self.corpus.padded[name], agg
                )
                owners = self.corpus.owners[name]
                cosines = queries @ passages.T
                affinities = queries @ self.corpus.centroid[name]
                if not samples:
                    samples = [[] for _ in range(len(queries))]
                for i in range(len(queries)):
                    top = ranked(owners, scores[i], None)[:1]
                    samples[i].append(
                        ModelScores(top, cosines[i].astype(np.float64), float(affinities[i]))
                    )
            self._calibrations[aggregation] = calibrate(samples)
        return self._calibrations[aggregation]

    def model_rankings(self, name: str, agg: Aggregation) -> list[list[tuple[int, float]]]:
        key = (name, agg)
        if key not in self._model_rankings:
            scores = iter(
                aggregate(
                    self.cosines[name], self.centroid_cosines[name], self.corpus.padded[name], agg
                )
            )
            owners = self.corpus.owners[name]
            self._model_rankings[key] = [
                [] if c.listing is not None else ranked(owners, next(scores), c.allowed)
                for c in self.captures
            ]
        return self._model_rankings[key]

    def run(
        self, config: Config, mode: str = "hybrid", per_query: Sequence[float] | None = None
    ) -> list[float]:
        """Return nDCG@10 per captured query under ``config``.

        ``per_query``: a keyword weight for each capture, in place of the configuration's.
        """
        from search import hybrid, relevance
        from search.hybrid import FusedHit, combine_semantic, fuse_rankings

        aggs = dict(config.aggregation)
        calibration = self.calibration(config.aggregation)
        per_model = {name: self.model_rankings(name, agg) for name, agg in aggs.items()}
        weights = dict(config.model_weights)
        values = []
        saved = hybrid.MISSING_Z_MARGIN
        hybrid.MISSING_Z_MARGIN = config.missing_margin
        try:
            for i, cap in enumerate(self.captures):
                if cap.listing is not None:
                    values.append(cap.listing)
                    continue
                rankings: dict[str, list[tuple[int, float]]] = {}
                if mode in ("keyword", "hybrid"):
                    rankings["keyword"] = cap.keyword
                judged = None
                if mode in ("semantic", "hybrid"):
                    models = {name: per_model[name][i] for name in aggs}
                    row = self._row[id(cap)]
                    evidence = [
                        relevance.ModelScores(
                            models[n],
                            self.background[n][row],
                            float(self.affinity[n][row]),
                            contrast=cap.models[n].contrast,
                        )
                        for n in aggs
                    ]
                    if calibration is not None:
                        judged = relevance.judge(evidence, calibration).corroborated(
                            calibration, word_matched=cap.word_matched
                        )
                    if len(models) == 1:
                        rankings["semantic"] = next(iter(models.values()))
                    else:
                        rankings["semantic"] = combine_semantic(models, weights or None)
                if len(rankings) == 1:
                    ((source, only),) = rankings.items()
                    fused = [FusedHit(cid, s, {source: s}) for cid, s in only]
                else:
                    keyword_weight = config.keyword_weight_for(kind_of(cap))
                    if per_query is not None:
                        keyword_weight = per_query[i]
                    weights = {"keyword": keyword_weight, "semantic": 1.0}
                    if config.method == "minmax":
                        fused = fuse_minmax(rankings, weights, config.missing_margin)
                    else:
                        fused = fuse_rankings(
                            rankings,
                            weights=weights,
                            method=config.method,  # type: ignore[arg-type]
                            k=config.rrf_k,
                        )
                if cap.outcome is not None and fused:
                    fused = with_outcome(fused, cap.outcome, config.outcome_weight)
                strong = fused
                if judged is not None:
                    keep = set(cap.keep_by_keyword)
                    keep.update(
                        h.campaign_id for h in fused if judged.passes(h.campaign_id, calibration)
                    )
                    strong = [h for h in fused if h.campaign_id in keep]
                ids = [self.corpus.external[h.campaign_id] for h in strong[:K]]
                values.append(ndcg(ids, cap.item["relevant"]))
        finally:
            hybrid.MISSING_Z_MARGIN = saved
        return values


def fuse_minmax(
    rankings: dict[str, list[tuple[int, float]]], weights: dict[str, float], margin: float
) -> list[Any]:
    """Fusion of each source's scores scaled to [0, 1] over the list it returned (its best 1,
    its weakest 0); a campaign a source did not return gets ``-margin`` from it."""
    from search.hybrid import FusedHit

    parts: dict[int, dict[str, float]] = {}
    for source, ranking in rankings.items():
        weight = weights.get(source, 1.0)
        if not ranking or weight == 0:
            continue
        first: dict[int, float] = {}
        for cid, score in ranking:
            first.setdefault(cid, score)
        low, high = min(first.values()), max(first.values())
        spread = (high - low) or 1.0
        for cid, score in first.items():
            parts.setdefault(cid, {})[source] = weight * (score - low) / spread
    used = [s for s, r in rankings.items() if r and weights.get(s, 1.0) != 0]
    hits = [
        FusedHit(
            cid,
            sum(p.values()) - sum(weights.get(s, 1.0) * margin for s in used if s not in p),
            p,
        )
        for cid, p in parts.items()
    ]
    hits.sort(key=lambda h: (-h.score, h.campaign_id))
    return hits


def with_outcome(
    fused: list[Any], strengths: dict[int, float], weight: float | None = None
) -> list[Any]:
    """``kb.searching.service._apply_outcome`` over captured condition strengths."""
    from kb.searching.service import OUTCOME_WEIGHT
    from search.hybrid import FusedHit

    weight = OUTCOME_WEIGHT if weight is None else weight
    low = min(h.score for h in fused)
    spread = (max(h.score for h in fused) - low) or 1.0
    rescored = [
        FusedHit(
            h.campaign_id,
            (h.score - low) / spread + weight * strengths.get(h.campaign_id, 0.0),
            h.contributions,
        )
        for h in fused
    ]
    rescored.sort(key=lambda h: (-h.score, h.campaign_id))
    return rescored


def shipped(models: Sequence[str]) -> Config:
    """The configuration the code ships with."""
    from kb.searching import service as svc
    from search import hybrid, vector

    return Config(
        aggregation=tuple((m, Aggregation(vector.SECOND_PASSAGE_WEIGHT, 2)) for m in models),
        keyword_weight=svc.WEIGHTS["keyword"],
        kind_keyword=(("outcome", svc.OUTCOME_KEYWORD_WEIGHT),),
        model_weights=tuple((m, 1.0) for m in models),
        method=svc.FUSION_METHOD,
        rrf_k=svc.FUSION_K,
        missing_margin=hybrid.MISSING_Z_MARGIN,
    )


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.fmean(values) if values else float("nan")


def cross_validate(
    captures: list[Capture], table: dict[Any, list[float]], base: Any, *, by_set: bool
) -> list[dict[str, Any]]:
    """Leave one set out: pick on the other sets, score on the one left out.

    ``by_set``: the pick maximizes the mean of the training sets' means (each set weighs the
    same); otherwise the mean over their queries (the largest set weighs most). Ties keep the
    shipped configuration.
    """
    sets = list(dict.fromkeys(c.set_name for c in captures))
    members = {name: [i for i, c in enumerate(captures) if c.set_name == name] for name in sets}

    def objective(key: Any, train: list[str]) -> float:
        if by_set:
            return mean(mean(table[key][i] for i in members[name]) for name in train)
        return mean(table[key][i] for name in train for i in members[name])

    folds = []
    for held in sets:
        train = [name for name in sets if name != held]
        best = max(table, key=lambda key: (objective(key, train), key == base))
        folds.append(
            {
                "held_out": held,
                "chosen": best,
                "train": objective(best, train),
                "train_base": objective(base, train),
                "test": members[held],
            }
        )
    return folds


def report_cv(
    captures: list[Capture],
    tables: dict[str, dict[Any, list[float]]],
    base: Any,
    title: str,
) -> dict[str, Any]:
    """Print every fold and every query type: shipped vs each fold's pick, under both rules."""
    hybrid_table = tables["hybrid"]
    base_values = hybrid_table[base]
    print(f"\n=== {title}: {len(hybrid_table)} configurations, leave one set out ===")
    cvs = {}
    for rule, by_set in (("sets", True), ("queries", False)):
        folds = cross_validate(captures, hybrid_table, base, by_set=by_set)
        cv = [0.0] * len(captures)
        print(f"  picked by the mean over the training {rule}:")
        for fold in folds:
            for i in fold["test"]:
                cv[i] = hybrid_table[fold["chosen"]][i]
            t = fold["test"]
            print(
                f"    fold {fold['held_out']:<22} chosen: {label_of(fold['chosen'])}\n"
                f"      train {fold['train_base']:.3f} -> {fold['train']:.3f};  held-out set "
                f"{mean(base_values[i] for i in t):.3f} -> {mean(cv[i] for i in t):.3f}"
            )
        cvs[rule] = cv
    kinds = sorted({type_of(c) for c in captures})
    print(
        f"  {'type (n)':<26}{'keyword':>8}{'semantic':>9}{'hybrid':>8}"
        f"{'CV(sets)':>10}{'diff':>8}{'CV(queries)':>12}{'diff':>8}"
    )
    summary = {}
    for kind in [*kinds, "overall"]:
        idx = [i for i, c in enumerate(captures) if kind == "overall" or type_of(c) == kind]
        kw = mean(tables["keyword"][base][i] for i in idx) if "keyword" in tables else math.nan
        sem = mean(tables["semantic"][base][i] for i in idx) if "semantic" in tables else math.nan
        b = mean(base_values[i] for i in idx)
        by_sets, by_queries = (mean(cvs[r][i] for i in idx) for r in ("sets", "queries"))
        summary[kind] = (b, by_sets, by_queries)
        print(
            f"  {f'{kind} ({len(idx)})':<26}{kw:>8.3f}{sem:>9.3f}{b:>8.3f}"
            f"{by_sets:>10.3f}{by_sets - b:>+8.3f}{by_queries:>12.3f}{by_queries - b:>+8.3f}"
        )
    for column, (rule, cv) in enumerate(cvs.items(), start=1):
        better = sum(1 for a, b in zip(cv, base_values, strict=True) if a > b + 1e-9)
        worse = sum(1 for a, b in zip(cv, base_values, strict=True) if a < b - 1e-9)
        print(f"  queries better / worse than shipped, picked by {rule}: {better} / {worse}")
        picked = {kind: (values[0], values[column]) for kind, values in summary.items()}
        print(f"  picked by {rule}, {verdict(picked)}")
    return {"cv": cvs, "summary": summary}


def label_of(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, Config | OutcomeRule):
        return key.label()
    if key and isinstance(key[0], tuple):  # (name, value) pairs
        return " ".join(f"{n}={v:g}" for n, v in key)
    return " + ".join(label_of(part) for part in key)


def type_of(capture: Capture) -> str:
    """Query type, English<->Chinese types pooled under one name across sets."""
    kind = str(capture.item.get("type", "?"))
    return "cross_lingual" if kind.startswith("cross_lingual") else kind


def fusion_kind(text: str, has_outcome: bool) -> str:
    """What the product can tell about a query before ranking: an outcome condition, else the
    script it is mainly written in (an English word counts about two Chinese characters)."""
    if has_outcome:
        return "outcome"
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    han = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    return "latin" if latin > 2 * han else "chinese"


def kind_of(capture: Capture) -> str:
    """The fusion kind of a captured query, from its text and whether a condition was parsed."""
    return fusion_kind(capture.item["query"].strip(), capture.outcome is not None)


KINDS = ("outcome", "latin", "chinese")
KIND_OUTCOME_WEIGHTS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
# The outcome kind's keyword weight: in a first run 1.0, the grid's top, was picked in every fold.
OUTCOME_KIND_KEYWORD = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0, 1.25, 1.5, 2.0, 3.0)


def kind_experiments(
    captures: list[Capture],
    replay: Replay,
    base: Config,
    keyword: dict[Any, list[float]],
    semantic: dict[Any, list[float]],
) -> dict[str, Any]:
    """Cross-validate a keyword weight per fusion kind (and the outcome weight).

    Kinds never share a query and a query's ranking depends only on its own kind's numbers, so
    every combination is composed per query from runs with one weight for all kinds.
    """
    from kb.searching.service import OUTCOME_WEIGHT

    kinds = [kind_of(c) if c.listing is None else "listing" for c in captures]
    types = sorted({type_of(c) for c in captures})
    print("\nfusion kind (observable) x labelled type, queries:")
    print(f"  {'kind':<10}" + "".join(f"{t:>15}" for t in types))
    for kind in (*KINDS, "listing"):
        row = [
            sum(1 for c, k in zip(captures, kinds, strict=True) if k == kind and type_of(c) == t)
            for t in types
        ]
        print(f"  {kind:<10}" + "".join(f"{n:>15}" for n in row))
    started = time.perf_counter()
    runs: dict[tuple[float, float], list[float]] = {}
    for w in OUTCOME_KIND_KEYWORD:
        for o in KIND_OUTCOME_WEIGHTS:
            uniform = replace(base, keyword_weight=w, kind_keyword=(), outcome_weight=o)
            runs[(w, o)] = replay.run(uniform)
    print(f"replayed {len(runs)} settings in {time.perf_counter() - started:.1f} s")
    shipped_kw = base.keyword_weight

    def composed(weights: dict[str, float], outcome: float) -> list[float]:
        return [runs[(weights.get(k, shipped_kw), outcome)][i] for i, k in enumerate(kinds)]

    def key(weights: dict[str, float], outcome: float) -> tuple[tuple[str, float], ...]:
        return (*((k, weights[k]) for k in sorted(weights)), ("outcome_weight", outcome))

    # The comparison: one keyword weight for every kind (WEIGHTS alone, before per-kind weights).
    shipped_kinds = dict.fromkeys(KINDS, shipped_kw)
    rest = {"latin": shipped_kw, "chinese": shipped_kw}
    families: dict[str, list[tuple[dict[str, float], float]]] = {
        "outcome kind's keyword weight alone (the rest at the shipped weight)": [
            ({"outcome": a, **rest}, OUTCOME_WEIGHT) for a in OUTCOME_KIND_KEYWORD
        ],
        "outcome kind's keyword weight x outcome weight (the rest at the shipped weight)": [
            ({"outcome": a, **rest}, o) for a in OUTCOME_KIND_KEYWORD for o in KIND_OUTCOME_WEIGHTS
        ],
        "keyword weight per kind (outcome/latin/chinese)": [
            ({"outcome": a, "latin": b, "chinese": c}, OUTCOME_WEIGHT)
            for a in OUTCOME_KIND_KEYWORD
            for b in KEYWORD_WEIGHTS
            for c in KEYWORD_WEIGHTS
        ],
        "keyword weight per kind x outcome weight": [
            ({"outcome": a, "latin": b, "chinese": c}, o)
            for a in OUTCOME_KIND_KEYWORD
            for b in KEYWORD_WEIGHTS
            for c in KEYWORD_WEIGHTS
            for o in KIND_OUTCOME_WEIGHTS
        ],
        "keyword weight: outcome kind vs the rest": [
            ({"outcome": a, "latin": b, "chinese": b}, OUTCOME_WEIGHT)
            for a in OUTCOME_KIND_KEYWORD
            for b in KEYWORD_WEIGHTS
        ],
        "keyword weight: outcome kind vs the rest x outcome weight": [
            ({"outcome": a, "latin": b, "chinese": b}, o)
            for a in OUTCOME_KIND_KEYWORD
            for b in KEYWORD_WEIGHTS
            for o in KIND_OUTCOME_WEIGHTS
        ],
        "keyword weight: latin vs chinese script (outcome kind at the global weight)": [
            (
                {"outcome": shipped_kw, "latin": a, "chinese": b},
                OUTCOME_WEIGHT,
            )
            for a in KEYWORD_WEIGHTS
            for b in KEYWORD_WEIGHTS
        ],
    }
    base_key = key(shipped_kinds, OUTCOME_WEIGHT)
    sets = list(dict.fromkeys(c.set_name for c in captures))
    print(f"\nbase of every comparison below: keyword weight {shipped_kw:g} for every kind")
    print("in-sample nDCG@10 by the outcome kind's keyword weight (the rest as shipped):")
    print(
        f"  {'weight':<7}"
        + "".join(f"{n.removesuffix('.json'):>16}" for n in sets)
        + f"{'outcome kind':>14}{'mean of sets':>14}{'of queries':>12}"
    )
    outcome_idx = [i for i, k in enumerate(kinds) if k == "outcome"]
    for a in OUTCOME_KIND_KEYWORD:
        values = composed({**shipped_kinds, "outcome": a}, OUTCOME_WEIGHT)
        per_set = [mean(values[i] for i, c in enumerate(captures) if c.set_name == n) for n in sets]
        print(
            f"  {a:<7g}"
            + "".join(f"{v:>16.4f}" for v in per_set)
            + f"{mean(values[i] for i in outcome_idx):>14.4f}{mean(per_set):>14.6f}"
            f"{mean(values):>12.6f}"
        )
    results = {}
    for title, settings in families.items():
        table = {key(w, o): composed(w, o) for w, o in settings}
        table[base_key] = composed(shipped_kinds, OUTCOME_WEIGHT)
        tables = {
            "keyword": {base_key: keyword[base]},
            "semantic": {base_key: semantic[base]},
            "hybrid": table,
        }
        results[title] = report_cv(captures, tables, base_key, title)
        by_kind_table(captures, kinds, results[title]["cv"], table[base_key])
        sys.stdout.flush()
    return results


def by_kind_table(
    captures: list[Capture], kinds: list[str], cvs: dict[str, list[float]], base: list[float]
) -> None:
    """Shipped vs CV per set and per fusion kind (the folds' own figures, by kind)."""
    sets = list(dict.fromkeys(c.set_name for c in captures))
    print(f"  {'set / kind (n)':<36}{'shipped':>8}{'CV(sets)':>10}{'CV(queries)':>12}")
    for name in sets:
        for kind in (*KINDS, "all"):
            idx = [
                i
                for i, c in enumerate(captures)
                if c.set_name == name and (kind == "all" or kinds[i] == kind)
            ]
            if not idx:
                continue
            print(
                f"  {f'{name} {kind} ({len(idx)})':<36}{mean(base[i] for i in idx):>8.3f}"
                f"{mean(cvs['sets'][i] for i in idx):>10.3f}"
                f"{mean(cvs['queries'][i] for i in idx):>12.3f}"
            )


# Per-query fusion: a small model picks each query's keyword weight from what the query and the
# two retrievers' lists show before fusion (issue 15: "a fusion that knows per query which
# signal to trust"). Candidates: the keyword weights a query may get.
PQ_CANDIDATES = (0.2, 0.35, 0.5, 0.85, 1.5, 3.0, 10.0)
PQ_LAMBDAS = (1.0, 10.0, 100.0, 1000.0)  # ridge penalties, picked by inner leave-one-set-out
PQ_MARGINS = (0.0, 0.01, 0.02, 0.05)  # leave the shipped weight only for a gain this large
# A second picking rule for the inner loop: prefer a simpler model unless the richer one is
# clearly better on the training sets (the first rule's picks overfitted: 7 weights, lambda 1).
PQ_TOLERANCE = 0.002
TOP = 10
PQ_TEXT_KEYWORD_FEATURES = frozenset(
    {
        "outcome",
        "latin",
        "length",
        "kw_hits",
        "kw_top",
        "kw_gap",
        "kw_cover",
        "kw_terms",
        "word_matched",
        "kw_keep",
    }
)
PQ_COMPACT_FEATURES = frozenset(
    {
        "outcome",
        "latin",
        "length",
        "kw_cover",
        "kw_top",
        "kw_first_in_sem",
        "sem_first_in_kw",
        "models_agree",
        "e5_top",
        "use_top",
    }
)


def query_features(
    cap: Capture,
    semantic: list[tuple[int, float]],
    per_model: dict[str, list[tuple[int, float]]],
) -> dict[str, float]:
    """What the product can see of a query before fusing: its text, the outcome parse, the
    keyword list (BM25 scores, matched terms) and the semantic lists (cosines per model)."""
    text = cap.item["query"].strip()
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    han = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    kw = [s for _, s in cap.keyword]
    union = {t for terms in cap.keyword_terms.values() for t in terms}
    top_terms = cap.keyword_terms.get(cap.keyword[0][0], ()) if cap.keyword else ()
    feats = {
        "outcome": float(cap.outcome is not None),
        "latin": latin / max(latin + han, 1),
        "length": math.log1p(len(text)),
        "kw_hits": math.log1p(len(kw)),
        "kw_top": math.log1p(kw[0]) if kw else 0.0,
        "kw_gap": (kw[0] - kw[1]) / kw[0] if len(kw) > 1 and kw[0] > 0 else float(bool(kw)),
        "kw_cover": len(top_terms) / len(union) if union else 0.0,
        "kw_terms": math.log1p(len(union)),
        "word_matched": float(cap.word_matched),
        "kw_keep": math.log1p(len(cap.keep_by_keyword)),
    }
    sem_top = {cid for cid, _ in semantic[:TOP]}
    kw_top = {cid for cid, _ in cap.keyword[:TOP]}
    feats["kw_sem_agree"] = len(sem_top & kw_top) / TOP
    feats["kw_first_in_sem"] = float(
        bool(cap.keyword) and cap.keyword[0][0] in {c for c, _ in semantic[:3]}
    )
    feats["sem_first_in_kw"] = float(bool(semantic) and semantic[0][0] in kw_top)
    tops = []
    for name, ranking in sorted(per_model.items()):
        cos = [s for _, s in ranking[:TOP]]
        feats[f"{name}_top"] = cos[0] if cos else 0.0
        feats[f"{name}_margin"] = cos[0] - cos[1] if len(cos) > 1 else 0.0
        feats[f"{name}_spread"] = cos[0] - mean(cos) if cos else 0.0
        contrast = cap.models[name].contrast
        feats[f"{name}_contrast"] = 0.0 if contrast is None else contrast
        tops.append({cid for cid, _ in ranking[:TOP]})
    if len(tops) == 2:
        feats["models_agree"] = len(tops[0] & tops[1]) / TOP
    return feats


def ridge(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], lam: float) -> Any:
    """Ridge on standardized features with an unpenalized intercept; returns a predictor."""
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd < 1e-9] = 1.0
    z = (x - mu) / sd
    y0 = y.mean(axis=0)
    beta = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ (y - y0))

    def predict(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = ((rows - mu) / sd) @ beta + y0
        return out

    return predict


def choose(
    x: npt.NDArray[np.float64],
    gains: npt.NDArray[np.float64],
    train: npt.NDArray[np.intp],
    test: npt.NDArray[np.intp],
    lam: float,
    margin: float,
) -> npt.NDArray[np.intp]:
    """Fit one ridge per candidate on ``train`` (gain over the shipped weight) and return, per
    ``test`` query, the candidate column with the best predicted gain (-1: the shipped weight)."""
    predicted = ridge(x[train], gains[train], lam)(x[test])
    best = predicted.argmax(axis=1)
    return np.where(predicted.max(axis=1) > margin, best, -1).astype(np.intp)


def per_query_experiments(
    captures: list[Capture],
    replay: Replay,
    base: Config,
    keyword: list[float],
    semantic: list[float],
) -> dict[str, Any]:
    """Leave one set out, nested: on the training sets the ridge penalty and the margin are
    picked by an inner leave-one-set-out, then the model fitted on all training sets picks each
    held-out query's keyword weight. Also: min-max normalised fusion, and outcome queries whose
    keyword side (with the condition) ranks first."""

    shipped_values = replay.run(base)
    runs = {w: replay.run(replace(base, keyword_weight=w, kind_keyword=())) for w in PQ_CANDIDATES}
    rows, names, x = feature_matrix(captures, replay, base)
    gains = np.array(
        [[runs[w][i] - shipped_values[i] for w in PQ_CANDIDATES] for i in rows], dtype=np.float64
    )
    set_of = np.array([captures[i].set_name for i in rows])
    sets = list(dict.fromkeys(set_of))
    print(f"\nper-query fusion: {len(rows)} queries with words, features: {', '.join(names)}")
    oracle = [max(runs[w][i] for w in PQ_CANDIDATES) for i in rows]
    print(
        f"  in-sample: shipped {mean(shipped_values[i] for i in rows):.4f}; best candidate per "
        f"query (oracle, unreachable) {mean(oracle):.4f}; candidates "
        + ", ".join(f"{w:g}: {mean(runs[w][i] for i in rows):.4f}" for w in PQ_CANDIDATES)
    )

    def value(pos: int, column: int) -> float:
        i = rows[pos]
        return shipped_values[i] if column < 0 else runs[PQ_CANDIDATES[column]][i]

    def fold_mean(picks: npt.NDArray[np.intp], test: npt.NDArray[np.intp]) -> float:
        return mean(value(int(p), int(c)) for p, c in zip(test, picks, strict=True))

    def nested(
        variants: dict[str, tuple[list[int], list[int]]], title: str, tolerance: float = 0.0
    ) -> tuple[list[float], dict[str, tuple[float, float]]]:
        """Outer leave-one-set-out; variant (features, candidates), penalty and margin picked by
        an inner leave-one-set-out over the training sets only. ``tolerance``: of the settings
        within this much of the best inner figure, the simplest (fewest candidates, then
        features, then the largest penalty and margin) is picked."""
        cv = list(shipped_values)
        print(f"\n=== {title} ===")
        for held in sets:
            train_sets = [s for s in sets if s != held]
            tried: list[tuple[float, str, float, float]] = []
            for variant, (features, columns) in variants.items():
                for lam in PQ_LAMBDAS:
                    for margin in PQ_MARGINS:
                        inner = []
                        for inner_held in train_sets:
                            fit_sets = [s for s in train_sets if s != inner_held]
                            tr = np.flatnonzero(np.isin(set_of, fit_sets))
                            te = np.flatnonzero(set_of == inner_held)
                            picks = choose(x[:, features], gains[:, columns], tr, te, lam, margin)
                            picks = np.array([columns[p] if p >= 0 else -1 for p in picks])
                            inner.append(fold_mean(picks, te))
                        tried.append((mean(inner), variant, lam, margin))
            top = max(t[0] for t in tried)
            best_score, variant, lam, margin = min(
                (t for t in tried if t[0] >= top - tolerance - 1e-12),
                key=lambda t: (
                    (len(variants[t[1]][1]), len(variants[t[1]][0]), -t[2], -t[3], -t[0])
                    if tolerance
                    else (-t[0],)
                ),
            )
            features, columns = variants[variant]
            tr = np.flatnonzero(set_of != held)
            te = np.flatnonzero(set_of == held)
            picks = choose(x[:, features], gains[:, columns], tr, te, lam, margin)
            picks = np.array([columns[p] if p >= 0 else -1 for p in picks])
            for p, c in zip(te, picks, strict=True):
                cv[rows[int(p)]] = value(int(p), int(c))
            counts: dict[Any, int] = {}
            for c in picks:
                label = PQ_CANDIDATES[c] if c >= 0 else "shipped"
                counts[label] = counts.get(label, 0) + 1
            print(
                f"  fold {held:<22} {variant}, lambda {lam:g}, margin {margin:g} "
                f"(inner {best_score:.3f}); held-out {fold_mean(np.full(len(te), -1), te):.3f}"
                f" -> {fold_mean(picks, te):.3f}; picks "
                + " ".join(f"{k}:{v}" for k, v in counts.items())
            )
        return cv, report_values(captures, shipped_values, cv, keyword, semantic)

    def columns_of(weights: Sequence[float]) -> list[int]:
        return [PQ_CANDIDATES.index(w) for w in weights]

    subsets = {
        "every feature": list(range(len(names))),
        "text + keyword list only": [
            j for j, n in enumerate(names) if n in PQ_TEXT_KEYWORD_FEATURES
        ],
        "compact": [j for j, n in enumerate(names) if n in PQ_COMPACT_FEATURES],
    }
    candidate_sets = {
        "7 weights": columns_of(PQ_CANDIDATES),
        "4 weights near shipped": columns_of((0.35, 0.5, 0.85, 1.5)),
        "0.2 / shipped / 1.5": columns_of((0.2, 1.5)),
    }
    variants = {
        f"{f} x {c}": (features, columns)
        for f, features in subsets.items()
        for c, columns in candidate_sets.items()
    }
    results: dict[str, Any] = {}
    for name, variant in variants.items():
        results[name] = nested({name: variant}, f"per-query keyword weight: {name}")
    results["nested"] = nested(
        variants, "per-query keyword weight: the variant too picked in the inner loop"
    )
    results["nested, simplest"] = nested(
        variants,
        f"per-query keyword weight: the variant too picked in the inner loop, the simplest "
        f"within {PQ_TOLERANCE:g} of the best inner figure",
        PQ_TOLERANCE,
    )
    # Fitted on every set: the coefficients, to read (not a figure of quality).
    fit = ridge(x, gains, 100.0)
    probe = np.eye(len(names)) * x.std(axis=0) + x.mean(axis=0)
    effect = fit(probe) - fit(x.mean(axis=0, keepdims=True))
    print("  predicted gain per +1 sd of each feature (all sets, lambda 100), by candidate:")
    print(f"  {'feature':<16}" + "".join(f"{w:>8g}" for w in PQ_CANDIDATES))
    for n, row in zip(names, effect, strict=True):
        print(f"  {n:<16}" + "".join(f"{v:>+8.3f}" for v in row))
    return results


def feature_matrix(
    captures: list[Capture], replay: Replay, base: Config
) -> tuple[list[int], list[str], npt.NDArray[np.float64]]:
    """The captures with words, the feature names and one row of features per such capture."""
    from search.hybrid import combine_semantic

    aggs = dict(base.aggregation)
    per_model_all = {name: replay.model_rankings(name, agg) for name, agg in aggs.items()}
    rows = [i for i, c in enumerate(captures) if c.listing is None]
    names: list[str] = []
    table = []
    for i in rows:
        models = {n: per_model_all[n][i] for n in aggs}
        sem = combine_semantic(models, dict(base.model_weights) or None)
        f = query_features(captures[i], sem, models)
        names = names or sorted(f)
        table.append([f[n] for n in names])
    return rows, names, np.array(table, dtype=np.float64)


# The per-query model put on record before the next blind set exists (search_cv_session7.txt):
# the best fixed row of the session's table, picked by looking at it, so only a new set can say
# whether it carries. --freeze fits it on every set given; --apply replays a set with it.
FROZEN_FEATURES = PQ_TEXT_KEYWORD_FEATURES
FROZEN_CANDIDATES = (0.2, 1.5)


def freeze_per_query(captures: list[Capture], replay: Replay, base: Config, out: Path) -> None:
    """Fit the pre-registered model on every capture (penalty and margin by leave-one-set-out)
    and write its parameters to ``out``."""
    rows, names, x = feature_matrix(captures, replay, base)
    keep = [j for j, n in enumerate(names) if n in FROZEN_FEATURES]
    shipped_values = replay.run(base)
    runs = {
        w: replay.run(replace(base, keyword_weight=w, kind_keyword=())) for w in FROZEN_CANDIDATES
    }
    gains = np.array(
        [[runs[w][i] - shipped_values[i] for w in FROZEN_CANDIDATES] for i in rows],
        dtype=np.float64,
    )
    set_of = np.array([captures[i].set_name for i in rows])
    sets = list(dict.fromkeys(set_of))

    def held_out(lam: float, margin: float) -> float:
        scores = []
        for held in sets:
            tr, te = np.flatnonzero(set_of != held), np.flatnonzero(set_of == held)
            picks = choose(x[:, keep], gains, tr, te, lam, margin)
            scores.append(
                mean(
                    shipped_values[rows[p]] if c < 0 else runs[FROZEN_CANDIDATES[c]][rows[p]]
                    for p, c in zip(te, picks, strict=True)
                )
            )
        return mean(scores)

    lam, margin = max(
        ((lam, margin) for lam in PQ_LAMBDAS for margin in PQ_MARGINS),
        key=lambda hp: held_out(*hp),
    )
    z = x[:, keep]
    mu, sd = z.mean(axis=0), z.std(axis=0)
    sd[sd < 1e-9] = 1.0
    y0 = gains.mean(axis=0)
    zs = (z - mu) / sd
    beta = np.linalg.solve(zs.T @ zs + lam * np.eye(len(keep)), zs.T @ (gains - y0))
    model = {
        "features": [names[j] for j in keep],
        "candidates": list(FROZEN_CANDIDATES),
        "mean": mu.tolist(),
        "scale": sd.tolist(),
        "coef": beta.tolist(),  # (features, candidates)
        "intercept": y0.tolist(),
        "margin": margin,
        "lambda": lam,
        "fitted_on": {name: int((set_of == name).sum()) for name in sets},
        "leave_one_set_out": held_out(lam, margin),
    }
    out.write_text(json.dumps(model, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"froze the per-query model (lambda {lam:g}, margin {margin:g}) in {out}")


def apply_per_query(
    captures: list[Capture],
    replay: Replay,
    base: Config,
    path: Path,
    keyword: list[float],
    semantic: list[float],
) -> None:
    """Replay every capture with the keyword weight the frozen model picks, against shipped."""
    model = json.loads(path.read_text(encoding="utf-8"))
    rows, names, x = feature_matrix(captures, replay, base)
    z = x[:, [names.index(n) for n in model["features"]]]
    predicted = ((z - np.array(model["mean"])) / np.array(model["scale"])) @ np.array(
        model["coef"]
    ) + np.array(model["intercept"])
    weights = [base.keyword_weight_for(kind_of(c)) for c in captures]
    picked: dict[Any, int] = {}
    for i, row in zip(rows, predicted, strict=True):
        if row.max() > model["margin"]:
            weights[i] = model["candidates"][int(row.argmax())]
        picked[weights[i]] = picked.get(weights[i], 0) + 1
    print(f"\n=== the frozen per-query model of {path.name} ===")
    print("  keyword weights given: " + ", ".join(f"{w:g}: {n}" for w, n in sorted(picked.items())))
    values = replay.run(base, per_query=weights)
    report_values(captures, replay.run(base), values, keyword, semantic, label="model")


def report_values(
    captures: list[Capture],
    shipped_values: list[float],
    cv: list[float],
    keyword: list[float],
    semantic: list[float],
    label: str = "CV",
) -> dict[str, tuple[float, float]]:
    """Per type: keyword, semantic, shipped hybrid and the cross-validated figure; verdict."""
    print(f"  {'type (n)':<26}{'keyword':>8}{'semantic':>9}{'shipped':>8}{label:>8}{'diff':>8}")
    summary = {}
    for kind in [*sorted({type_of(c) for c in captures}), "overall"]:
        idx = [i for i, c in enumerate(captures) if kind == "overall" or type_of(c) == kind]
        b, v = mean(shipped_values[i] for i in idx), mean(cv[i] for i in idx)
        summary[kind] = (b, v)
        print(
            f"  {f'{kind} ({len(idx)})':<26}{mean(keyword[i] for i in idx):>8.3f}"
            f"{mean(semantic[i] for i in idx):>9.3f}{b:>8.3f}{v:>8.3f}{v - b:>+8.3f}"
        )
    for name in dict.fromkeys(c.set_name for c in captures):
        idx = [i for i, c in enumerate(captures) if c.set_name == name]
        print(
            f"  set {name:<24} shipped {mean(shipped_values[i] for i in idx):.3f}"
            f" {label} {mean(cv[i] for i in idx):.3f}"
        )
    better = sum(1 for a, b in zip(cv, shipped_values, strict=True) if a > b + 1e-9)
    worse = sum(1 for a, b in zip(cv, shipped_values, strict=True) if a < b - 1e-9)
    print(f"  queries better / worse than shipped: {better} / {worse}")
    print("  " + verdict(summary))
    return summary


def verdict(summary: dict[str, tuple[float, float]]) -> str:
    """KEEP only if overall gains and no type loses more than 0.01 (session 6's rule)."""
    base, value = summary["overall"]
    worst = min((v - b, k) for k, (b, v) in summary.items() if k != "overall")
    keep = value - base > 0 and worst[0] >= -0.01
    return (
        f"verdict: overall {value - base:+.4f}, worst type {worst[1]} {worst[0]:+.4f} -> "
        f"{'KEEP' if keep else 'reject'}"
    )


MINMAX_MARGINS = (0.0, 0.1, 0.25, 0.5)
OUTCOME_FIRST_KEYWORD = (0.5, 1.5, 3.0, 10.0, 1000.0)  # 1000: the text's meaning only breaks ties
OUTCOME_FIRST_WEIGHT = (2.0, 4.0, 10.0)  # 10: a satisfied condition ranks before any other


def normalisation_and_outcome(
    captures: list[Capture],
    replay: Replay,
    base: Config,
    keyword: list[float],
    semantic: list[float],
) -> None:
    """Cross-validate min-max fusion (each list scaled to [0, 1]) against the shipped z-score
    fusion, and outcome queries ranked by their keyword side and condition first."""
    families = {
        "min-max fusion x keyword weight x missing margin": [
            replace(base, method="minmax", keyword_weight=w, kind_keyword=(), missing_margin=m)
            for w in (*KEYWORD_WEIGHTS, 1.5, 2.0)
            for m in MINMAX_MARGINS
        ],
        "outcome queries: keyword weight x outcome weight, up to keyword and condition first": [
            replace(base, kind_keyword=(("outcome", a),), outcome_weight=o)
            for a in OUTCOME_FIRST_KEYWORD
            for o in OUTCOME_FIRST_WEIGHT
        ],
    }
    shipped_values = replay.run(base)
    for title, configs in families.items():
        table = {cfg: replay.run(cfg) for cfg in configs}
        table[base] = shipped_values
        tables = {"keyword": {base: keyword}, "semantic": {base: semantic}, "hybrid": table}
        report_cv(captures, tables, base, title)
        sys.stdout.flush()


def check(app: Any, replay: Replay, base: Config) -> None:
    """Compare the replay of the shipped configuration with the real search, per query."""
    from bench.eval_devsets import _run

    for mode in ("keyword", "semantic", "hybrid"):
        simulated = replay.run(base, mode)
        differ = 0
        for cap, value in zip(replay.captures, simulated, strict=True):
            ranked_ids, _ = _run(app, cap.item, mode)
            real = ndcg(ranked_ids, cap.item["relevant"])
            if abs(real - value) > 1e-9:
                differ += 1
                print(f"  {mode} {cap.item['id']}: real {real:.3f} replay {value:.3f}")
        print(f"check {mode}: {differ} of {len(simulated)} queries differ from the real search")


AGGREGATIONS = (
    Aggregation(0.0, 1),
    Aggregation(0.1, 2),
    Aggregation(0.25, 2),
    Aggregation(0.5, 2),
    Aggregation(0.25, 3),
    Aggregation(0.5, 3),
    Aggregation(0.5, 5),
    Aggregation(0.0, 1, True),
    Aggregation(0.1, 2, True),
    Aggregation(0.25, 2, True),
)
KEYWORD_WEIGHTS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0)
MARGINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
MODEL_RATIOS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)  # second model's weight, the first's 1


def experiments(base: Config, models: Sequence[str]) -> dict[str, list[Config]]:
    """Families of configurations, each cross-validated on its own, and all of them crossed."""

    def weighted(ratio: float) -> tuple[tuple[str, float], ...]:
        return tuple((m, 1.0 if j == 0 else ratio) for j, m in enumerate(models))

    def aggregated(choice: Sequence[Aggregation]) -> tuple[tuple[str, Aggregation], ...]:
        return tuple(zip(models, choice, strict=True))

    families = {
        "passage aggregation per model": [
            replace(base, aggregation=aggregated(c))
            for c in itertools.product(AGGREGATIONS, repeat=len(models))
        ],
        "keyword weight (z-score)": [replace(base, keyword_weight=w) for w in KEYWORD_WEIGHTS],
        "model weights": [replace(base, model_weights=weighted(r)) for r in MODEL_RATIOS],
        "missing-source margin": [replace(base, missing_margin=m) for m in MARGINS],
        "keyword weight x missing-source margin": [
            replace(base, keyword_weight=w, missing_margin=m)
            for w in KEYWORD_WEIGHTS
            for m in MARGINS
        ],
        "RRF vs z-score": [base]
        + [
            replace(base, method="rrf", rrf_k=k, keyword_weight=w)
            for k in (10, 30, 60)
            for w in (0.35, 0.5, 0.7, 1.0)
        ],
        "aggregation x keyword weight x model weights": [
            replace(base, aggregation=aggregated(c), keyword_weight=w, model_weights=weighted(r))
            for c in itertools.product(AGGREGATIONS[:7], repeat=len(models))
            for w in (0.35, 0.5, 0.7)
            for r in (0.8, 1.0, 1.25)
        ],
    }
    for configs in families.values():
        if base not in configs:
            configs.append(base)
    return families


def _head(t: Any) -> str:
    return "\n".join(p for p in (t.title, t.goal, t.elements_text()) if p)


def _sections(t: Any) -> list[tuple[str, str]]:
    return [
        ("summary", t.summary),
        ("went_well", t.went_well),
        ("problems", t.problems),
        ("lessons", t.lessons),
        ("recommendations", t.recommendations),
        ("hypotheses", t.hypotheses),
        *((f"document:{title}", f"{title}\n{body}") for title, body in t.documents),
    ]


def split_shipped(t: Any, *, limit: int | None = None, prefix: bool = True) -> list[str]:
    from search import documents

    limit = limit or documents.PASSAGE_CHARS
    found = [_head(t)[: limit * 2]]
    for _, text in _sections(t):
        for chunk in documents.chunk_text(text, limit)[: documents.MAX_SECTION_PASSAGES]:
            found.append(f"{t.title}：{chunk}" if prefix else chunk)
    return found[: documents.MAX_PASSAGES]


def split_head_apart(t: Any) -> list[str]:
    """Title + goal one passage, the five elements another (each with the title)."""
    found = split_shipped(t)
    head = "\n".join(p for p in (t.title, t.goal) if p)
    return [head, f"{t.title}：{t.elements_text()}", *found[1:]]


def split_whole_sections(t: Any) -> list[str]:
    """Shipped passages plus each section's start as one passage (title + heading + text)."""
    from search import documents

    extra = [
        f"{t.title}：{text.strip()[: documents.PASSAGE_CHARS * 2]}"
        for _, text in _sections(t)[:6]
        if text.strip()
    ]
    return [*split_shipped(t), *extra][: documents.MAX_PASSAGES]


PASSAGE_VARIANTS: dict[str, Any] = {
    "shipped passages (re-embedded)": split_shipped,
    "chunks of 200 characters": lambda t: split_shipped(t, limit=200),
    "chunks of 600 characters": lambda t: split_shipped(t, limit=600),
    "no title before chunks": lambda t: split_shipped(t, prefix=False),
    "title+goal apart from elements": split_head_apart,
    "plus each section's start whole": split_whole_sections,
}


def passage_experiments(
    app: Any,
    captures: list[Capture],
    corpus: Corpus,
    backgrounds: Any,
    base: Config,
    keyword: dict[Any, list[float]],
    cache_dir: Path,
) -> None:
    """Cross-validate other passages and the e5 query prompt against what ships, one at a time."""
    shipped_replay = Replay(captures, corpus, backgrounds)
    shipped_values = shipped_replay.run(base)
    shipped_semantic = shipped_replay.run(base, "semantic")
    variants: dict[str, Replay] = {}
    for model in dict(base.aggregation):
        variants[f"{model} queries with the passage prompt"] = Replay(
            captures, corpus, backgrounds, query_prompt={model: False}
        )
    for name, split in PASSAGE_VARIANTS.items():
        started = time.perf_counter()
        other = corpus_of_passages(app, split, corpus.external, cache_dir)
        rows = {m: len(r) for m, r in other.rows.items()}
        print(
            f"  {name}: rows {rows} (shipped { ({m: len(r) for m, r in corpus.rows.items()}) }),"
            f" {time.perf_counter() - started:.0f} s"
        )
        variants[name] = Replay(captures, other, backgrounds)
    for name, variant in variants.items():
        table: dict[Any, list[float]] = {("shipped",): shipped_values}
        semantic = variant.run(base, "semantic")
        for agg in (base.aggregation, tuple((m, Aggregation(0.0, 1)) for m, _ in base.aggregation)):
            table[(name, replace(base, aggregation=agg))] = variant.run(
                replace(base, aggregation=agg)
            )
        print(f"  {name}: semantic {mean(shipped_semantic):.3f} -> {mean(semantic):.3f}")
        tables: dict[str, dict[Any, list[float]]] = {
            "keyword": keyword,
            "semantic": {("shipped",): shipped_semantic},
            "hybrid": table,
        }
        report_cv(captures, tables, ("shipped",), name)
        sys.stdout.flush()


KEYWORD_KNOBS: dict[str, tuple[float, ...]] = {
    "FIELD_TIEBREAK": (0.0, 0.1, 0.2, 0.35, 0.5),
    "COORD_BONUS": (0.0, 0.15, 0.3, 0.5, 0.8),
    "BM25_K1": (0.8, 1.2, 1.6, 2.0),
    "BM25_B": (0.5, 0.75, 0.9),
}


def keyword_experiments(
    app: Any, captures: list[Capture], corpus: Corpus, backgrounds: Any, base: Config
) -> None:
    """Cross-validate the keyword scorer's constants (search/keyword/scoring.py), one at a time
    and tie-break x coordination crossed; hybrid and keyword mode."""
    from kb.searching import service as svc
    from kb.searching.indexer import get_indexes
    from search.keyword import scoring

    shipped = {name: getattr(scoring, name) for name in KEYWORD_KNOBS}

    def run(setting: dict[str, float]) -> tuple[list[float], list[float]]:
        for name, value in {**shipped, **setting}.items():
            setattr(scoring, name, value)
        try:
            with app.app_context():
                indexes = get_indexes()
                variant = []
                for cap in captures:
                    if cap.search_args is None:
                        variant.append(cap)
                        continue
                    words, filters = cap.search_args
                    found = indexes.keyword.search(words, filters=filters, limit=svc.CANDIDATES)
                    hits = [(h.campaign_id, h.score) for h in found.hits]
                    variant.append(replace(cap, keyword=hits))
        finally:
            for name, value in shipped.items():
                setattr(scoring, name, value)
        replay = Replay(variant, corpus, backgrounds)
        return replay.run(base), replay.run(base, "keyword")

    base_key = tuple(sorted(shipped.items()))
    families: dict[str, list[dict[str, float]]] = {
        name: [{name: v} for v in values] for name, values in KEYWORD_KNOBS.items()
    }
    families["FIELD_TIEBREAK x COORD_BONUS"] = [
        {"FIELD_TIEBREAK": t, "COORD_BONUS": c}
        for t in KEYWORD_KNOBS["FIELD_TIEBREAK"]
        for c in KEYWORD_KNOBS["COORD_BONUS"]
    ]
    results: dict[Any, tuple[list[float], list[float]]] = {}
    for title, settings in families.items():
        hybrid_table: dict[Any, list[float]] = {}
        keyword_table: dict[Any, list[float]] = {}
        for setting in [{}, *settings]:
            key = tuple(sorted({**shipped, **setting}.items()))
            if key not in results:
                results[key] = run(setting)
            hybrid_table[key], keyword_table[key] = results[key]
        tables = {"keyword": keyword_table, "hybrid": hybrid_table}
        report_cv(captures, tables, base_key, f"keyword scorer: {title}")
        # The same folds judged in keyword mode alone.
        report_cv(captures, {"hybrid": keyword_table}, base_key, f"{title}, keyword mode")
        sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# --outcome: queries with an outcome condition, captured from the product's own search call.


@dataclass(slots=True)
class OutcomeCapture:
    """One query as ``kb.searching.service.search`` saw it in hybrid mode, plus both single modes.

    Captured by wrapping the service's fusion and outcome steps during a real search, so the
    replay below ranks exactly as the product (``outcome_check`` says so query by query).
    """

    item: dict[str, Any]
    set_name: str
    rankings: dict[str, list[tuple[int, float]]]  # what _fuse got (empty: a filtered listing)
    weights: dict[str, float]
    strengths: dict[int, float] | None  # campaign -> match_outcome, None: no condition parsed
    condition: str | None
    strong: set[int]  # what the relevance floor keeps (every candidate when it is off)
    external: dict[int, str]
    hybrid: list[str]  # the real search's top K
    keyword: float  # nDCG@10 of the real keyword / semantic modes
    semantic: float
    keyword_ids: list[str] = field(default_factory=list)


def outcome_capture(app: Any, sets: dict[str, list[dict[str, Any]]]) -> list[OutcomeCapture]:
    """Run every query through the real search (three modes), recording fusion's inputs."""
    from kb.extensions import db
    from kb.models import Campaign
    from kb.searching import service as svc
    from kb.searching.schemas import validate_search_query

    seen: dict[str, Any] = {}
    real_fuse, real_apply = svc._fuse, svc._apply_outcome

    def fuse(rankings: Any, weights: Any) -> Any:
        seen["rankings"] = {k: list(v) for k, v in rankings.items()}
        seen["weights"] = dict(weights)
        return real_fuse(rankings, weights)

    def apply(intent: Any, fused: Any, filters: Any, indexes: Any) -> Any:
        out = real_apply(intent, fused, filters, indexes)
        seen["strengths"] = {h.campaign_id: h.contributions["outcome"] for h in out}
        seen["condition"] = intent.condition
        return out

    svc._fuse, svc._apply_outcome = fuse, apply  # type: ignore[assignment]
    captures = []
    try:
        with app.app_context():
            external = {c.id: c.external_id or "" for c in db.session.query(Campaign).all()}
            for set_name, queries in sets.items():
                for item in queries:
                    values = {}
                    kw_ids: list[str] = []
                    for mode in ("keyword", "semantic"):
                        args = {"q": item["query"], "mode": mode, "limit": K,
                                **item.get("filters", {})}  # fmt: skip
                        found = svc.search(validate_search_query(args), fold=False)
                        ids = [r.campaign.external_id or "" for r in found.results]
                        values[mode] = ndcg(ids, item["relevant"])
                        if mode == "keyword":
                            kw_ids = ids
                    seen.clear()
                    args = {"q": item["query"], "mode": "hybrid", "limit": 100,
                            "include_weak": "true", **item.get("filters", {})}  # fmt: skip
                    found = svc.search(validate_search_query(args), fold=False)
                    listed = [r.campaign.id for r in found.results]
                    captures.append(
                        OutcomeCapture(
                            item=item,
                            set_name=set_name,
                            rankings=seen.get("rankings", {}),
                            weights=seen.get("weights", {}),
                            strengths=seen.get("strengths"),
                            condition=seen.get("condition"),
                            # strong first, then weak: the floor's keep set (all, unfloored)
                            strong=set(listed[: found.total]),
                            external=external,
                            hybrid=[external[i] for i in listed[: found.total]][:K],
                            keyword=values["keyword"],
                            semantic=values["semantic"],
                            keyword_ids=kw_ids,
                        )
                    )
    finally:
        svc._fuse, svc._apply_outcome = real_fuse, real_apply  # type: ignore[assignment]
    return captures


@dataclass(frozen=True, slots=True)
class OutcomeRule:
    """How a query with a parsed outcome condition is ranked (others: as shipped).

    ``keyword_weight`` / ``outcome_weight``: None keeps the shipped one. ``keyword_first``:
    campaigns the keyword side did not return rank after those it did (the models then only
    order within each tier). ``floor``: False ranks without the relevance floor (diagnosis).
    """

    keyword_weight: float | None = None
    outcome_weight: float | None = None
    keyword_first: bool = False
    floor: bool = True
    # Keyword weight for a query that names a metric but no condition parsed ("NPS 做到 50 分以上
    # 的活动", "GMV 涨得最多"); None: the shipped weight for queries without a condition.
    metric_keyword_weight: float | None = None
    # The relevance floor keeps every campaign whose numbers meet the parsed condition.
    keep_matched: bool = False

    def label(self) -> str:
        parts = [
            "kw=" + ("shipped" if self.keyword_weight is None else f"{self.keyword_weight:g}"),
            "o=" + ("shipped" if self.outcome_weight is None else f"{self.outcome_weight:g}"),
        ]
        if self.metric_keyword_weight is not None:
            parts.append(f"metric-kw={self.metric_keyword_weight:g}")
        if self.keyword_first:
            parts.append("keyword-first")
        if not self.floor:
            parts.append("no floor")
        if self.keep_matched:
            parts.append("floor keeps met conditions")
        return " ".join(parts)


def outcome_rank(cap: OutcomeCapture, rule: OutcomeRule, limit: int = K) -> list[str]:
    """The first ``limit`` of one captured query under ``rule``, as ``service.search`` ranks."""
    from kb.searching import service as svc
    from search.hybrid import FusedHit, fuse_rankings

    if not cap.rankings:  # a filtered listing, or nothing found: no knob here changes it
        return cap.hybrid[:limit]
    weights = dict(cap.weights)
    outcome = cap.strengths is not None
    if outcome and rule.keyword_weight is not None:
        weights["keyword"] = rule.keyword_weight
    if not outcome and rule.metric_keyword_weight is not None and names_metric(cap):
        weights["keyword"] = rule.metric_keyword_weight
    if len(cap.rankings) == 1:
        ((name, only),) = cap.rankings.items()
        fused = [FusedHit(cid, s, {name: s}) for cid, s in only]
    else:
        fused = fuse_rankings(
            cap.rankings, weights=weights, method=svc.FUSION_METHOD, k=svc.FUSION_K
        )
    if cap.strengths is not None and fused:
        o = svc.OUTCOME_WEIGHT if rule.outcome_weight is None else rule.outcome_weight
        low = min(h.score for h in fused)
        spread = (max(h.score for h in fused) - low) or 1.0
        kw = {cid for cid, _ in cap.rankings.get("keyword", ())}
        tier = rule.keyword_first and bool(kw)
        scored = [
            (
                -(h.campaign_id in kw) if tier else 0,
                -((h.score - low) / spread + o * cap.strengths.get(h.campaign_id, 0.0)),
                h.campaign_id,
            )
            for h in fused
        ]
        order = [cid for _, _, cid in sorted(scored)]
    else:
        order = [h.campaign_id for h in fused]
    if rule.floor:
        keep = set(cap.strong)
        if rule.keep_matched and cap.strengths:
            keep.update(cid for cid, strength in cap.strengths.items() if strength > 0)
        order = [cid for cid in order if cid in keep]
    return [cap.external[cid] for cid in order[:limit]]


def names_metric(cap: OutcomeCapture) -> bool:
    """Whether the query's words (a typed condition aside) name a catalogued metric."""
    key = cap.item["query"]
    if key not in _NAMES_METRIC:
        from kb.searching import conditions
        from kb.searching import service as svc
        from search.normalize import normalize
        from search.outcomes import find_metrics

        words = conditions.read_query(key).words
        text = normalize(words)[0]
        found = find_metrics(text, svc._catalog_lookup, svc._METRIC_ALIASES)
        _NAMES_METRIC[key] = any(m.keys for m in found)
    return _NAMES_METRIC[key]


_NAMES_METRIC: dict[str, bool] = {}


def outcome_values(captures: list[OutcomeCapture], rule: OutcomeRule) -> list[float]:
    return [ndcg(outcome_rank(c, rule), c.item["relevant"]) for c in captures]


def outcome_type(cap: OutcomeCapture) -> str:
    kind = str(cap.item.get("type", "?"))
    return "cross_lingual" if kind.startswith("cross_lingual") else kind


def outcome_experiments(captures: list[OutcomeCapture]) -> None:
    """Check the replay, show where outcome queries lose, cross-validate outcome rules."""
    shipped_rule = OutcomeRule()
    base = outcome_values(captures, shipped_rule)
    differ = [c.item["id"] for c in captures if outcome_rank(c, shipped_rule) != c.hybrid]
    print(f"check: replay of the shipped ranking differs from the real search on {len(differ)}"
          f" of {len(captures)} queries {differ[:10]}")  # fmt: skip
    types = sorted({outcome_type(c) for c in captures})
    parsed = [c.strengths is not None for c in captures]
    print("\nqueries with an outcome condition parsed, by labelled type:")
    for t in types:
        idx = [i for i, c in enumerate(captures) if outcome_type(c) == t]
        print(f"  {t:<16} {sum(parsed[i] for i in idx):>4} of {len(idx)}")
    kw = [c.keyword for c in captures]
    sem = [c.semantic for c in captures]
    nofloor = outcome_values(captures, OutcomeRule(floor=False))
    print("\nper type (in-sample, every set): keyword, semantic, hybrid shipped, hybrid w/o floor")
    for t in [*types, "overall"]:
        idx = [i for i, c in enumerate(captures) if t in ("overall", outcome_type(c))]
        print(f"  {t:<16}({len(idx):>3}) " + " ".join(
            f"{mean(v[i] for i in idx):.3f}" for v in (kw, sem, base, nofloor)))  # fmt: skip
    print("\noutcome-type queries where hybrid is below keyword by > 0.05 (set, query, parsed "
          "condition, kw / sem / hybrid / hybrid w/o floor; relevant in keyword top10 missing "
          "from hybrid's: F = cut by the floor, else its hybrid rank)")  # fmt: skip
    for i, c in enumerate(captures):
        if outcome_type(c) != "outcome" or kw[i] - base[i] <= 0.05:
            continue
        hy = outcome_rank(c, shipped_rule)
        ids = {v: k for k, v in c.external.items()}
        full = outcome_rank(c, OutcomeRule(floor=False), limit=len(ids))
        by_keyword = {cid for cid, _ in c.rankings.get("keyword", ())}
        missing = []
        for doc in c.keyword_ids:
            if doc in c.item["relevant"] and doc not in hy:
                cut = ids[doc] not in c.strong
                where = "F" if cut else str(full.index(doc) + 1) if doc in full else "-"
                missing.append(f"{doc}(g{c.item['relevant'][doc]},{where})")
        # * = the keyword side returned it too; s = its condition strength
        intruders = [
            f"{d}{'*' if ids[d] in by_keyword else ''}s{(c.strengths or {}).get(ids[d], 0):.1f}"
            for d in hy
            if d not in c.item["relevant"]
        ]
        print(f"  {c.set_name.removesuffix('.json'):<16} {c.item['query']}  [{c.condition}]  "
              f"{kw[i]:.2f}/{sem[i]:.2f}/{base[i]:.2f}/{nofloor[i]:.2f}  missing {' '.join(missing)}"
              f"  non-relevant in hybrid top10: {' '.join(intruders)}")  # fmt: skip

    outcome_cv(captures, base, kw, sem)


OUTCOME_KEYWORD = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
OUTCOME_WEIGHTS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
METRIC_KEYWORD = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def outcome_cv(
    captures: list[OutcomeCapture], base: list[float], kw: list[float], sem: list[float]
) -> None:
    """Leave one set out over outcome rules; every fold, every type, both picking rules."""
    grid = [
        OutcomeRule(w, o, first)
        for w in OUTCOME_KEYWORD
        for o in OUTCOME_WEIGHTS
        for first in (False, True)
    ]
    shipped_rule = OutcomeRule()
    table: dict[Any, list[float]] = {r: outcome_values(captures, r) for r in grid}
    table[shipped_rule] = base
    families = {
        "keyword weight x outcome weight x keyword-first, outcome-condition queries": grid,
        "the floor keeps campaigns that meet the condition": [OutcomeRule(keep_matched=True)],
        "keyword weight of queries naming a metric without a condition": [
            OutcomeRule(metric_keyword_weight=w) for w in METRIC_KEYWORD
        ],
        "both: floor keeps met conditions x metric-naming keyword weight": [
            OutcomeRule(metric_keyword_weight=w, keep_matched=True) for w in METRIC_KEYWORD
        ],
        "floor keeps met conditions x outcome keyword weight x outcome weight": [
            OutcomeRule(w, o, keep_matched=True) for w in OUTCOME_KEYWORD for o in OUTCOME_WEIGHTS
        ],
    }
    for title, rules in families.items():
        family = {r: table[r] if r in table else outcome_values(captures, r) for r in rules}
        family[shipped_rule] = base
        outcome_family(captures, title, family, shipped_rule, base, kw, sem)


def outcome_family(
    captures: list[OutcomeCapture],
    title: str,
    table: dict[Any, list[float]],
    shipped_rule: OutcomeRule,
    base: list[float],
    kw: list[float],
    sem: list[float],
) -> None:
    types = sorted({outcome_type(c) for c in captures})
    print(f"\n--- {title}: in-sample per type (every set)")
    print("  " + f"{'rule':<44}" + "".join(f"{t[:12]:>13}" for t in [*types, "overall"]))
    for rule, values in table.items():
        cells = "".join(
            f"{mean(values[i] for i, c in enumerate(captures) if t in ('overall', outcome_type(c))):>13.3f}"
            for t in [*types, "overall"]
        )
        print(f"  {rule.label():<44}{cells}")
    tables = {"keyword": {shipped_rule: kw}, "semantic": {shipped_rule: sem}, "hybrid": table}
    result = report_cv(captures, tables, shipped_rule, title)  # type: ignore[arg-type]
    sets = list(dict.fromkeys(c.set_name for c in captures))
    for rule_name, cv in result["cv"].items():
        print(f"  per fold x type, picked by {rule_name}: shipped -> CV (keyword mode)")
        for name in sets:
            cells = []
            for t in types:
                idx = [i for i, c in enumerate(captures)
                       if c.set_name == name and outcome_type(c) == t]  # fmt: skip
                if idx:
                    b, v = mean(base[i] for i in idx), mean(cv[i] for i in idx)
                    k = mean(kw[i] for i in idx)
                    cells.append(f"{t} {b:.3f}->{v:.3f} (kw {k:.3f})")
            print(f"    {name.removesuffix('.json'):<16} " + "; ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", default="e5,use")
    parser.add_argument("--check", action="store_true", help="compare replay and real search")
    parser.add_argument("--json", type=Path, default=None, help="per-query figures here")
    parser.add_argument(
        "--only", default=None, help="run only the knob families whose title holds this text"
    )
    parser.add_argument(
        "--skip", default=None, help="leave out the knob families whose title holds this text"
    )
    parser.add_argument(
        "--keyword", action="store_true", help="only the keyword scorer's experiments"
    )
    parser.add_argument(
        "--passages", action="store_true", help="only the passage and query-prompt experiments"
    )
    parser.add_argument(
        "--kinds", action="store_true", help="only the keyword weight per fusion kind"
    )
    parser.add_argument(
        "--per-query",
        action="store_true",
        help="only the per-query fusion model, min-max fusion and outcome-first experiments",
    )
    parser.add_argument(
        "--freeze", type=Path, default=None, help="fit the pre-registered per-query model, save"
    )
    parser.add_argument(
        "--apply", type=Path, default=None, help="replay the sets with a frozen per-query model"
    )
    parser.add_argument(
        "--sets",
        default=",".join(SETS),
        help="labelled sets in bench/data, comma-separated (default: every in-scope set)",
    )
    parser.add_argument(
        "--captures",
        type=Path,
        default=None,
        help="keep the captures in this pickle and reuse them (same tree and data only)",
    )
    parser.add_argument(
        "--outcome",
        action="store_true",
        help="only the outcome-query experiments (captured from the real search call)",
    )
    options = parser.parse_args()
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-fit-"))
    sets = {
        name: json.loads((DATA / name).read_text(encoding="utf-8"))["queries"]
        for name in options.sets.split(",")
    }
    if options.outcome:
        started = time.perf_counter()
        if options.captures and options.captures.exists():
            with options.captures.open("rb") as handle:
                found = pickle.load(handle)  # noqa: S301  # our own file
        else:
            found = outcome_capture(make_app(data_dir, options.models), sets)
            if options.captures:
                with options.captures.open("wb") as handle:
                    pickle.dump(found, handle)
        print(f"captured {len(found)} queries in {time.perf_counter() - started:.1f} s")
        outcome_experiments(found)
        return
    needs_app = options.check or options.keyword or options.passages
    app = make_app(data_dir, options.models) if needs_app or not options.captures else None
    started = time.perf_counter()
    if options.captures and options.captures.exists():
        with options.captures.open("rb") as handle:
            captures, corpus, backgrounds = pickle.load(handle)  # noqa: S301  # our own file
    else:
        captures, corpus, backgrounds = capture(app or make_app(data_dir, options.models), sets)
        if options.captures:
            with options.captures.open("wb") as handle:
                pickle.dump((captures, corpus, backgrounds), handle)
    print(f"captured {len(captures)} queries in {time.perf_counter() - started:.1f} s")
    replay = Replay(captures, corpus, backgrounds)
    models = list(corpus.owners)
    base = shipped(models)
    if options.kinds:  # the check after the figures: it takes longer than the experiments
        kind_experiments(
            captures,
            replay,
            base,
            {base: replay.run(base, "keyword")},
            {base: replay.run(base, "semantic")},
        )
    if options.check:
        assert app is not None
        check(app, replay, base)
    if options.kinds:
        return
    if options.freeze:
        freeze_per_query(captures, replay, base, options.freeze)
        return
    if options.apply:
        keyword_values, semantic_values = replay.run(base, "keyword"), replay.run(base, "semantic")
        apply_per_query(captures, replay, base, options.apply, keyword_values, semantic_values)
        return
    if options.per_query:
        keyword_values, semantic_values = replay.run(base, "keyword"), replay.run(base, "semantic")
        per_query_experiments(captures, replay, base, keyword_values, semantic_values)
        normalisation_and_outcome(captures, replay, base, keyword_values, semantic_values)
        return
    if options.keyword:
        keyword_experiments(app, captures, corpus, backgrounds, base)
        return
    if options.passages:
        passage_experiments(
            app,
            captures,
            corpus,
            backgrounds,
            base,
            {("shipped",): replay.run(base, "keyword")},
            data_dir / "fit-vectors",
        )
        return
    started = time.perf_counter()
    cache: dict[Config, list[float]] = {}
    keyword: dict[Any, list[float]] = {base: replay.run(base, "keyword")}
    semantic: dict[Any, list[float]] = {base: replay.run(base, "semantic")}
    results = {}
    for title, configs in experiments(base, models).items():
        if options.only and options.only not in title:
            continue
        if options.skip and options.skip in title:
            continue
        for cfg in configs:
            if cfg not in cache:
                cache[cfg] = replay.run(cfg)
        table: dict[Any, list[float]] = {cfg: cache[cfg] for cfg in configs}
        tables: dict[str, dict[Any, list[float]]] = {
            "keyword": keyword,
            "semantic": semantic,
            "hybrid": table,
        }
        results[title] = report_cv(captures, tables, base, title)
        sys.stdout.flush()
    print(f"replayed {len(cache)} configurations in {time.perf_counter() - started:.1f} s")
    if options.json:
        out = {
            cfg.label(): dict(zip((c.item["id"] for c in captures), values, strict=True))
            for cfg, values in cache.items()
        }
        options.json.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
