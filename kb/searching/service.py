"""Search campaigns: keyword, semantic or hybrid, with filters, facets and reasons.

The indexes return campaign ids and scores; one hydration step loads the campaigns from the
database in rank order (dropping any that were deleted meanwhile), so a result is never staler
than the database.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.orm import selectinload

from kb.campaigns import metrics as metric_catalog
from kb.extensions import db
from kb.insights import signals
from kb.models import Campaign
from kb.searching import backfill, conditions, explain, floor
from kb.searching.indexer import SearchIndexes, get_indexes
from kb.searching.schemas import (
    RecognisedConditionOut,
    SearchQuery,
    SearchResponseOut,
    SearchResultOut,
    UnreadConditionOut,
)
from search import concepts, relevance
from search.analysis import analyze
from search.embedder import Embedder, query_cache
from search.hybrid import FusedHit, combine_semantic, fuse_rankings
from search.keyword import KeywordHit, KeywordResult, SearchFilters, query_terms
from search.outcomes import OutcomeIntent, match_outcome, parse_outcome
from search.vector import Vectors

# How many candidates each ranking contributes before fusion: enough that a good hit ranked
# low by one method can still be lifted by the other.
CANDIDATES = 100
# Fusion: per-ranking z-scored scores, weighted. Fitted by leave-one-set-out cross-validation
# over every labelled set (bench/fit_search.py, 354 queries; bench/results/search_cv_session6.txt):
# z-score beat RRF (k 10-60) in every fold. Keyword weight 0.5 (was 0.35, fitted on the first dev
# set alone): picked in 3-4 of 5 folds; held-out folds nDCG@10 +0.000 to +0.005 overall by the
# picking rule and the floor version, no query type worse by more than 0.003. 0.6 (picked when the
# largest set weighs most) cost the 30-query held-out set 0.026 against 0.005 for 0.5.
FUSION_METHOD: Literal["rrf", "zscore"] = "zscore"
WEIGHTS = {"keyword": 0.5, "semantic": 1.0}
# A query naming an outcome condition ("ROI 低于预期") fuses with this keyword weight instead:
# its words name the metric and the campaign type, which the keyword side matches and the models
# blur. Fitted like WEIGHTS (bench/fit_search.py --kinds, 510 queries in six sets): held-out folds
# +0.0015 overall, outcome queries +0.019, English<->Chinese -0.003 (3 of 110 carry a condition),
# no other type moved. Picked 1.25-3 per fold, 1.5 on all six sets; a weight per script
# (English vs Chinese queries) lost in cross-validation and is not used.
OUTCOME_KEYWORD_WEIGHT = 1.5
FUSION_K = 60
# How much a satisfied outcome condition ("ROI 低于预期") adds to a fused score in [0, 1].
OUTCOME_WEIGHT = 2.0
# Add the domain terms of a plain-language situation to the query (search/concepts.py).
EXPAND_CONCEPTS = True
# Fold semantic and hybrid matches below the calibrated relevance floor (search/relevance.py)
# out of the result set; False restores every match (bench/eval_outofscope.py compares both).
RELEVANCE_FLOOR = True
# Run each model's query embedding and vector scan on a pool thread while the request thread
# runs the keyword search: torch and NumPy release the GIL. False runs them one after the other
# (same results; tests compare the two).
CONCURRENT = True
# Pool threads per process: one per model for two requests at once; more requests queue.
POOL_THREADS = 4
# Why a search came back empty: the page says so in words (templates/search.html).
EmptyReason = Literal["out_of_scope", "reversed_dates", "no_match"]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One ranked campaign with what explains its place."""

    campaign: Campaign
    score: float
    title: Markup
    snippet: Markup
    reasons: list[str]
    matched_terms: tuple[str, ...] = ()
    # Below the relevance floor: shown folded ("可能相关"), never counted in totals or facets.
    weak: bool = False
    # How strongly the meaning matched, by the calibrated floors; None without a meaning match.
    strength: relevance.Strength | None = None


@dataclass(slots=True)
class SearchResponse:
    """A page of results with totals, facets and timing."""

    query: str
    mode: str
    total: int
    took_ms: float
    results: list[SearchResult]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    outcome: OutcomeIntent | None = None
    # Domain terms the query's plain-language situation added (search/data/concepts.txt).
    expansions: tuple[str, ...] = ()
    # The terms it would have added, left out because the search asked for the words as typed.
    skipped_expansions: tuple[str, ...] = ()
    # Matches below the relevance floor: how many, and the first of them for the page's fold
    # (empty when they were asked into ``results`` with include_weak, or past the first page).
    weak_total: int = 0
    weak: list[SearchResult] = field(default_factory=list)
    empty_reason: EmptyReason | None = None
    # Conditions read from the query's text ("GMV 超过 50万"), filtered on and not searched as words.
    recognised: tuple[conditions.TypedCondition, ...] = ()
    # Fragments written as conditions whose unit does not fit the metric: searched as words.
    unread: tuple[conditions.UnreadCondition, ...] = ()


def filters_from(
    query: SearchQuery, typed: tuple[conditions.TypedCondition, ...] = ()
) -> SearchFilters:
    """Turn validated search parameters, and the conditions typed in the query, into filters."""
    # Validated already, into the canonical form.
    stated: list[conditions.MetricCondition | conditions.MetricOrder]
    stated = [conditions.parse(text) for text in query.metric_range]
    # A superlative ("ROI 最高") keeps the campaigns that have the value (search orders them).
    stated += [found.condition for found in typed]
    ranges = [c.to_range() for c in stated if c.key != conditions.BUDGET]
    ids = signals.campaigns_with_signals(set(query.signal)) if query.signal else None
    for budget in (c for c in stated if c.key == conditions.BUDGET):
        within = set(_budget_order(budget))
        ids = within if ids is None else ids & within
    return SearchFilters(
        industry=query.industry,
        goal_type=query.goal_type,
        status=query.status,
        department=query.department,
        business_line=query.business_line,
        audience=tuple(query.audience),
        channel=tuple(query.channel),
        reward_type=tuple(query.reward_type),
        date_from=query.date_from,
        date_to=query.date_to,
        metrics=tuple(ranges),
        missed=query.missed,
        ids=None if ids is None else frozenset(ids),
    )


def _budget_order(condition: conditions.MetricCondition | conditions.MetricOrder) -> list[int]:
    """Return the live campaigns whose budget (元) meets the condition, in its direction.

    The keyword index holds no budget: it is read from the database (one indexed column).
    """
    low, high = condition.bounds()
    statement = sa.select(Campaign.id).where(
        Campaign.deleted_at.is_(None), Campaign.budget_cny.is_not(None)
    )
    if low is not None:
        statement = statement.where(Campaign.budget_cny >= low)
    if high is not None:
        statement = statement.where(Campaign.budget_cny < high)
    budget = (
        Campaign.budget_cny.asc() if condition.op in ("<", "<=") else Campaign.budget_cny.desc()
    )
    return list(db.session.scalars(statement.order_by(budget, Campaign.id.desc())))


def search(query: SearchQuery, *, fold: bool = True) -> SearchResponse:
    """Run a search and return one page of hydrated results.

    ``fold``: also present the first matches below the relevance floor (``weak``), for the
    search page's fold. The API and exports list ``results`` only: without the fold they skip
    loading and explaining up to a page of campaigns nobody sees.
    """
    started = time.perf_counter()
    indexes = get_indexes()
    # "GMV 超过 50万" in the box is a filter like the form's; the words left are searched.
    typed = conditions.read_query(query.q, as_text=query.as_text)
    # A superlative with words ("ROI 最高的直播") orders what the words find and drops nothing:
    # a campaign that writes about its ROI without recording one still answers them. Alone
    # ("ROI 最高") it lists the campaigns that have the value.
    filtering = tuple(
        t
        for t in typed.conditions
        if not (typed.words and isinstance(t.condition, conditions.MetricOrder))
    )
    filters = filters_from(query, filtering)
    text = query.q.strip()
    searched = typed.words
    if query.date_from and query.date_to and query.date_from > query.date_to:
        # Nothing can match: say so rather than let the page blame the words.
        return SearchResponse(
            query=text,
            mode=query.mode,
            total=0,
            took_ms=_ms(started),
            results=[],
            empty_reason="reversed_dates",
            recognised=typed.conditions,
            unread=typed.unread,
        )

    if not searched:
        # No words: a filtered listing straight from the keyword index, newest first, or by
        # the value of the first condition typed in the query ("GMV 超过 1亿": highest first).
        listing = _listing(indexes, query, filters, typed.conditions)
        ids = [hit.campaign_id for hit in listing.hits]
        results = [
            SearchResult(
                campaign=c,
                score=0.0,
                title=escape(c.title),
                snippet=explain.plain_snippet(c),
                reasons=[],
            )
            for c in _hydrate(ids)
        ]
        return SearchResponse(
            query=text,
            mode=query.mode,
            total=listing.total,
            took_ms=_ms(started),
            results=results,
            facets=listing.facets,
            empty_reason=None if listing.total else "no_match",
            recognised=typed.conditions,
            unread=typed.unread,
        )

    intent = parse_outcome(searched, _catalog_lookup, _METRIC_ALIASES)
    words = intent.residual_query if intent and intent.residual_query else searched
    own_terms = query_terms(words)  # what the user typed, before concept cues add terms
    suggested = concepts.expand(searched) if EXPAND_CONCEPTS else ()
    expansions = suggested if query.expand else ()
    if expansions:
        words = f"{words} {' '.join(expansions)}"
    rankings: dict[str, list[tuple[int, float]]] = {}
    terms: dict[int, tuple[str, ...]] = {}
    keyword_total = 0
    judged: _Judged | None = None
    semantic: _SemanticBranch | None = None
    if query.mode in ("semantic", "hybrid"):
        # One query embedding with the terms appended: on the held-out set it matched or beat
        # embedding without them (0.757) and fusing both embeddings (0.760) at 0.769 nDCG@10.
        meaning = f"{searched}（{'、'.join(expansions)}）" if expansions else searched
        # Started first: the models run on the pool while this thread does the keyword search.
        semantic = _SemanticBranch.start(indexes, meaning, filters)
    if query.mode in ("keyword", "hybrid") or RELEVANCE_FLOOR:
        # In semantic mode the keyword hits only serve as evidence for the floor.
        found = indexes.keyword.search(words, filters=filters, limit=CANDIDATES)
        terms = {hit.campaign_id: relevance_terms(hit.terms) for hit in found.hits}
        if query.mode != "semantic":
            rankings["keyword"] = [(hit.campaign_id, hit.score) for hit in found.hits]
            keyword_total = found.total
    if semantic is not None:
        rankings["semantic"], judged = semantic.result()
    if judged is not None:  # in or out of scope: the learned decision (relevance.py)
        # The words searched, as embedded: a condition typed in the query is a filter, not text.
        evidence = relevance.keyword_signals(own_terms, [*terms.items()], indexes.keyword.count())
        verdict = relevance.decide(judged.judgement, judged.calibration, evidence, searched)
        judged = _Judged(verdict, judged.calibration)

    fused = _fuse(rankings, fusion_weights(intent))
    if intent is not None:
        fused = _apply_outcome(intent, fused, filters, indexes)
    strong, weak = fused, []
    # A condition typed in the query ("预算 500 万以上的大活动最后效果怎么样") says what is in
    # scope: every campaign it selects stays, ranked by the words, even when the words alone
    # ("大活动最后效果怎么样") are too vague for the floor to keep any of them.
    thresholds = [
        t for t in typed.conditions if isinstance(t.condition, conditions.MetricCondition)
    ]
    if judged is not None and not thresholds:
        # A strong keyword match keeps a campaign whatever its meaning scored.
        keep = relevance.keyword_evidence(own_terms, [*terms.items()], indexes.keyword.count())
        keep.update(h.campaign_id for h in fused if judged.passes(h.campaign_id))
        # A campaign whose numbers meet the query's outcome condition ("留存指标没达标的活动") is
        # in scope whatever its text scored, as a typed condition keeps what it selects. The
        # floor judges text only and cut them: leave-one-set-out over the 102 labelled outcome
        # queries, outcome nDCG@10 +0.010 in every fold, no other type moved
        # (bench/results/outcome_cv_session9.txt); no out-of-scope query of bench/data parses
        # an outcome condition.
        keep.update(h.campaign_id for h in fused if h.contributions.get("outcome", 0.0) > 0)
        strong = [h for h in fused if h.campaign_id in keep]
        weak = [h for h in fused if h.campaign_id not in keep]
    order = _order_of(typed.conditions)
    if order is not None:
        # "ROI 最高的直播": the words chose the campaigns, the value ranks them.
        strong = _by_value(indexes, strong, order)
    floored = query.mode != "keyword"
    total = len(strong) if floored or intent is not None else keyword_total
    listed = strong + weak if query.include_weak else strong
    page = listed[query.offset : query.offset + query.limit]
    folded = weak[: query.limit] if fold and not query.include_weak and query.offset == 0 else []
    # Metrics only explain an outcome; the page needs nothing else from the child rows.
    page_ids = [hit.campaign_id for hit in (*page, *folded)]
    campaigns = {c.id: c for c in _hydrate(page_ids, with_metrics=intent is not None)}
    # Once for every title and snippet; no stop words or single characters marked.
    marked = set(relevance.content_terms(analyze(words, mode="query")))
    weak_ids = {hit.campaign_id for hit in weak}

    def result(hit: FusedHit) -> SearchResult | None:
        campaign = campaigns.get(hit.campaign_id)
        if campaign is None:
            return None  # deleted since it was indexed
        matched = terms.get(hit.campaign_id, ())
        strength = judged.strength(hit.campaign_id) if judged is not None else None
        if "semantic" not in hit.contributions:
            strength = None
        return SearchResult(
            campaign=campaign,
            score=round(hit.score, 4),
            title=explain.highlighted_title(campaign, marked if matched else set()),
            snippet=explain.snippet(campaign, marked if matched else set()),
            reasons=explain.reasons(hit, matched, strength, intent, campaign),
            matched_terms=matched,
            weak=hit.campaign_id in weak_ids,
            strength=strength,
        )

    results = [r for hit in page if (r := result(hit)) is not None]
    weak_results = [r for hit in folded if (r := result(hit)) is not None]
    facets = indexes.keyword.facet_counts([hit.campaign_id for hit in strong])
    empty_reason: EmptyReason | None = None
    if not total:
        empty_reason = "out_of_scope" if fused else "no_match"  # the floor folded them all
    return SearchResponse(
        query=text,
        mode=query.mode,
        total=total,
        took_ms=_ms(started),
        results=results,
        facets=facets,
        outcome=intent,
        expansions=expansions,
        skipped_expansions=() if query.expand else suggested,
        weak_total=len(weak),
        weak=weak_results,
        empty_reason=empty_reason,
        recognised=typed.conditions,
        unread=typed.unread,
    )


def _listing(
    indexes: SearchIndexes,
    query: SearchQuery,
    filters: SearchFilters,
    typed: tuple[conditions.TypedCondition, ...],
) -> KeywordResult:
    """List the campaigns passing the filters: newest first, or by a typed condition's value.

    Highest first for ≥, ＞ and =, lowest first for ≤ and ＜: the clearest matches lead.
    """
    first = _order_of(typed) or (typed[0].condition if typed else None)
    if isinstance(first, conditions.MetricOrder):
        # Ordered here, whole: finished campaigns lead, which the index's order cannot say.
        everything = indexes.keyword.search(
            "", filters=filters, limit=indexes.keyword.count(), facets=True
        )
        ordered = _value_order(everything.hits, first, indexes)
        page = ordered[query.offset : query.offset + query.limit]
        return KeywordResult(
            [KeywordHit(i, 0.0, ()) for i in page], everything.total, everything.facets
        )
    if first is None or first.key != conditions.BUDGET:
        order = None if first is None else (first.to_range(), first.op not in ("<", "<="))
        return indexes.keyword.search(
            "", filters=filters, limit=query.limit, offset=query.offset, facets=True, order=order
        )
    # The index holds no budget: the database's order, kept to the campaigns the filters pass.
    counted = indexes.keyword.search("", filters=filters, limit=0, facets=True)
    allowed = indexes.keyword.matching_ids(filters)
    ordered = [i for i in _budget_order(first) if allowed is None or i in allowed]
    hits = [KeywordHit(i, 0.0, ()) for i in ordered[query.offset : query.offset + query.limit]]
    return KeywordResult(hits, counted.total, counted.facets)


def _order_of(typed: tuple[conditions.TypedCondition, ...]) -> conditions.MetricOrder | None:
    """Return the first superlative typed in the query ("ROI 最高"), if any."""
    return next(
        (t.condition for t in typed if isinstance(t.condition, conditions.MetricOrder)), None
    )


def _by_value(
    indexes: SearchIndexes, hits: list[FusedHit], order: conditions.MetricOrder
) -> list[FusedHit]:
    """Return ``hits`` in the order ``order`` asks for (``_value_order``)."""
    place = {campaign_id: i for i, campaign_id in enumerate(_value_order(hits, order, indexes))}
    return sorted(hits, key=lambda hit: place[hit.campaign_id])


def _value_order(
    hits: list[FusedHit] | list[KeywordHit], order: conditions.MetricOrder, indexes: SearchIndexes
) -> list[int]:
    """Return the hits' campaign ids by the value ``order`` names; equal values keep their order.

    An outcome (actual, attainment, lift) ranks finished campaigns first: a running campaign's
    number so far is not its result, so it follows them (by its value too), as it stays out of
    hit rates. A target or a budget is known before the start: every campaign ranks alike.
    The keyword index holds the values (a budget: the database). Hits without the value (the
    words found them; alone, a superlative keeps none) come last in their own order.
    """
    ids = [hit.campaign_id for hit in hits]
    if order.key == conditions.BUDGET:
        values = _budgets(ids)
    else:
        values = indexes.keyword.metric_values(ids, order.to_range())
    finished = (
        _completed(ids) if order.field != "target" and order.key != conditions.BUDGET else None
    )
    sign = -1.0 if order.descending else 1.0

    def place(campaign_id: int) -> tuple[bool, bool, float]:
        value = values.get(campaign_id)
        running = finished is not None and campaign_id not in finished
        return value is None, running, 0.0 if value is None else sign * value

    return sorted(ids, key=place)  # stable: equal values keep the words' order


def _completed(ids: list[int]) -> set[int]:
    """Return which of these campaigns are completed."""
    statement = sa.select(Campaign.id).where(Campaign.status == "completed", _among(ids))
    return set(db.session.scalars(statement))


def _budgets(ids: list[int]) -> dict[int, float]:
    """Return the budget (元) of each of these campaigns that has one."""
    statement = sa.select(Campaign.id, Campaign.budget_cny).where(
        Campaign.budget_cny.is_not(None), _among(ids)
    )
    wanted = set(ids)
    return {
        campaign_id: float(budget)
        for campaign_id, budget in db.session.execute(statement)
        if budget is not None and campaign_id in wanted
    }


# Past this many ids, read the whole column rather than bind each id (SQLite allows 32,766).
_MAX_BOUND_IDS = 500


def _among(ids: list[int]) -> sa.ColumnElement[bool]:
    """Select these campaigns, or every live one when there are many (callers keep their own)."""
    if len(ids) > _MAX_BOUND_IDS:
        return Campaign.deleted_at.is_(None)
    return Campaign.id.in_(ids)


def relevance_terms(terms: tuple[str, ...]) -> tuple[str, ...]:
    """Return the matched terms worth naming: no stop words, single characters or numbers."""
    return tuple(relevance.content_terms(terms))


@dataclass(frozen=True, slots=True)
class _Judged:
    """The floor's verdict on one query, with the calibration it was made against."""

    judgement: relevance.Judgement
    calibration: relevance.Calibration

    def passes(self, campaign_id: int) -> bool:
        return self.judgement.passes(campaign_id, self.calibration)

    def strength(self, campaign_id: int) -> relevance.Strength | None:
        z = self.judgement.strengths.get(campaign_id)
        return None if z is None else relevance.strength_of(z, self.calibration)


_Ranking = list[tuple[int, float]]
_ModelResult = tuple[_Ranking, relevance.ModelScores | None]
_T = TypeVar("_T")


def _on_pool(task: Callable[[], _T]) -> Future[_T] | _T:
    """Start ``task`` on the search pool (run it here when CONCURRENT is off)."""
    return _executor().submit(task) if CONCURRENT else task()


def _joined(outcome: Future[_T] | _T) -> _T:
    """Wait for what ``_on_pool`` started."""
    return outcome.result() if isinstance(outcome, Future) else outcome


def _combined(per_model: dict[str, _Ranking], weights: dict[str, float]) -> _Ranking:
    """Return one model's ranking as it is, several combined (z-scored, weighted)."""
    if len(per_model) == 1:
        return next(iter(per_model.values()))
    return combine_semantic(per_model, weights)


@dataclass(slots=True)
class _SemanticBranch:
    """Rank by meaning, one pool task per model (query embedding, vector scan, floor evidence).

    Everything that touches the database (syncing the vectors) runs on the request thread
    before the tasks start; the tasks use only the models, the in-memory vectors and the
    keyword index (which locks itself). ``result`` joins them in model order, so the fusion
    sees exactly what the sequential path would.
    """

    indexes: SearchIndexes
    calibration: relevance.Calibration | None
    pending: list[tuple[str, Future[_ModelResult] | _ModelResult]]

    @classmethod
    def start(cls, indexes: SearchIndexes, text: str, filters: SearchFilters) -> _SemanticBranch:
        indexes.sync_vectors()  # other processes' writes; keyword search needs no vectors
        allowed = indexes.keyword.matching_ids(filters)
        # One calibration for the whole query: its floors judge the evidence gathered against
        # its centroids, even if a background recalibration swaps in a new one meanwhile.
        calibrated = floor.current(indexes) if RELEVANCE_FLOOR else None
        pending: list[tuple[str, Future[_ModelResult] | _ModelResult]] = []
        for embedder in backfill.serving(indexes):  # a model still filling does not rank yet
            task = _model_task(indexes, embedder, text, allowed, calibrated)
            pending.append((embedder.name, _on_pool(task)))
        return cls(indexes, None if calibrated is None else calibrated.calibration, pending)

    def result(self) -> tuple[_Ranking, _Judged | None]:
        per_model: dict[str, _Ranking] = {}
        evidence: list[relevance.ModelScores] = []
        for name, outcome in self.pending:
            ranking, scores = _joined(outcome)
            per_model[name] = ranking
            if scores is not None:
                evidence.append(scores)
        judged = None
        if self.calibration is not None and len(evidence) == len(per_model):
            judged = _Judged(relevance.judge(evidence, self.calibration), self.calibration)
        return _combined(per_model, backfill.weights(self.indexes)), judged


def _model_task(
    indexes: SearchIndexes,
    embedder: Embedder,
    text: str,
    allowed: set[int] | None,
    calibrated: floor.Calibrated | None,
) -> Callable[[], _ModelResult]:
    def run() -> _ModelResult:
        vector: Vectors = query_cache(embedder).encode(text)
        ranking = indexes.vectors[embedder.name].search(vector, limit=CANDIDATES, allowed=allowed)
        scores = None
        if calibrated is not None:
            scores = floor.model_scores(calibrated, indexes, embedder, vector, ranking)
        return ranking, scores

    return run


@dataclass(slots=True)
class MeaningRanking:
    """A ranking by meaning under way on the search pool; ``result`` waits for it."""

    pending: list[tuple[str, Future[_Ranking] | _Ranking]]
    weights: dict[str, float]

    def result(self) -> _Ranking:
        return _combined({name: _joined(outcome) for name, outcome in self.pending}, self.weights)


def start_ranking_by_meaning(text: str, *, limit: int) -> MeaningRanking:
    """Start ranking campaigns by the meaning of ``text`` alone, the models at once on the pool.

    For long texts such as a draft (the similar-cases view): encoded as given, no query cache;
    the per-model rankings are combined as a semantic search combines them. Returns at once: the
    caller's thread may read the database meanwhile (the pool's tasks only encode and scan the
    in-memory vectors), as the draft analysis checks collisions while the models encode.
    """
    indexes = get_indexes()
    indexes.sync_vectors()  # on the request thread: it reads the database

    def task(embedder: Embedder) -> _Ranking:
        vector = embedder.encode_queries([text])[0]
        return indexes.vectors[embedder.name].search(vector, limit=limit)

    pending = [(e.name, _on_pool(functools.partial(task, e))) for e in backfill.serving(indexes)]
    return MeaningRanking(pending, backfill.weights(indexes))


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Return this process's search pool, created on first use (after gunicorn's fork)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():  # a forked child has no pool threads
            executor = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="kb-search")
            _pool = (os.getpid(), executor)
        return _pool[1]


def fusion_weights(intent: OutcomeIntent | None) -> dict[str, float]:
    """Return the fusion weights for a query: its outcome condition, if any, decides."""
    if intent is None:
        return WEIGHTS
    return {**WEIGHTS, "keyword": OUTCOME_KEYWORD_WEIGHT}


def _fuse(
    rankings: dict[str, list[tuple[int, float]]], weights: dict[str, float]
) -> list[FusedHit]:
    if len(rankings) == 1:
        ((name, ranking),) = rankings.items()
        return [FusedHit(cid, score, {name: score}) for cid, score in ranking]
    return fuse_rankings(rankings, weights=weights, method=FUSION_METHOD, k=FUSION_K)


def _apply_outcome(
    intent: OutcomeIntent, fused: list[FusedHit], filters: SearchFilters, indexes: SearchIndexes
) -> list[FusedHit]:
    """Lift the campaigns whose numbers meet the outcome condition; the rest follow."""
    if not fused:
        return fused
    # Fused scores may be z-score sums (negative too): scale them into [0, 1] first.
    low = min(hit.score for hit in fused)
    spread = (max(hit.score for hit in fused) - low) or 1.0
    facts = indexes.facts.facts([hit.campaign_id for hit in fused])
    rescored = []
    for hit in fused:
        strength = match_outcome(intent, facts.get(hit.campaign_id, ()))
        score = (hit.score - low) / spread + OUTCOME_WEIGHT * strength
        rescored.append(
            FusedHit(hit.campaign_id, score, {**hit.contributions, "outcome": strength})
        )
    rescored.sort(key=lambda h: (-h.score, h.campaign_id))
    return rescored


_METRIC_ALIASES = tuple(
    alias for entry in metric_catalog.CATALOG for alias in (*entry.aliases, entry.label)
)


def _catalog_lookup(name: str) -> tuple[str, str] | None:
    entry = metric_catalog.lookup(name)
    return (entry.key, entry.direction) if entry else None


def _hydrate(ids: list[int], *, with_metrics: bool = False) -> list[Campaign]:
    """Load live campaigns by id, in the order given (their metrics too if asked).

    Other child rows load lazily if used: a snippet reaches the documents only when no field
    of the campaign itself has a match.
    """
    if not ids:
        return []
    statement = sa.select(Campaign).where(Campaign.id.in_(ids), Campaign.deleted_at.is_(None))
    if with_metrics:
        statement = statement.options(selectinload(Campaign.metrics))
    by_id = {c.id: c for c in db.session.scalars(statement).all()}
    return [by_id[i] for i in ids if i in by_id]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def response_out(response: SearchResponse) -> SearchResponseOut:
    """Return the API shape of a search response."""
    return SearchResponseOut(
        query=response.query,
        mode=response.mode,
        total=response.total,
        took_ms=response.took_ms,
        results=[
            SearchResultOut(
                id=r.campaign.id,
                title=r.campaign.title,
                title_html=str(r.title),
                score=r.score,
                snippet=str(r.snippet),
                reasons=r.reasons,
                matched_terms=list(r.matched_terms),
                industry=r.campaign.industry,
                goal_type=r.campaign.goal_type,
                status=r.campaign.status,
                start_date=r.campaign.start_date,
                end_date=r.campaign.end_date,
                weak=r.weak,
                semantic_strength=r.strength,
            )
            for r in response.results
        ],
        facets=response.facets,
        expanded_terms=list(response.expansions),
        recognised_conditions=[
            RecognisedConditionOut(
                code=found.condition.code, label=found.condition.label, text=found.text
            )
            for found in response.recognised
        ],
        unread_conditions=[
            UnreadConditionOut(text=found.text, reason=found.reason) for found in response.unread
        ],
        weak_total=response.weak_total,
        empty_reason=response.empty_reason,
    )
