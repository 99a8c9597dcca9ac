"""The keyword search's fast postings path and cache must rank exactly as the matcher path did.

The reference below is ``rank`` as it was before the postings were read from one read of their
extent and cached (commit 67350ac): every posting list walked through Whoosh's matcher. The
index holds the demo corpus eight times over (440 campaigns, so common terms span several
128-posting blocks of a segment) in several segments, with deletions and replaced documents.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from whoosh import fields as whoosh_fields
from whoosh.filedb.filestore import RamStorage

from kb.demo import demo_records
from search import postings
from search.documents import CampaignText, MetricFact
from search.keyword import KeywordIndex, KeywordResult, MetricRange, SearchFilters, scoring, storage
from search.keyword.fields import TEXT_FIELDS
from search.postings import MappedSegment, PostingsCache

COPIES = 8


def reference_term_postings(reader: Any, field: str, btext: bytes) -> tuple[Any, Any]:
    """search.postings.term_postings as of 67350ac, through Whoosh's matcher only."""
    ids, weights = [], []
    for leaf, offset in reader.leaf_readers():
        if (field, btext) not in leaf:
            continue
        leaf_ids, leaf_weights = postings.matcher_postings(leaf, field, btext)
        ids.append(leaf_ids + offset)
        weights.append(leaf_weights)
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(ids), np.concatenate(weights)


def reference_rank(
    searcher: Any,
    terms: list[str],
    lengths: npt.NDArray[np.float64],
    allowed: npt.NDArray[np.bool_],
    cache: Any = None,
) -> scoring.Ranking:
    """search.keyword.scoring.rank as of 67350ac (``cache`` ignored)."""
    reader = searcher.reader()
    size = reader.doc_count_all()
    totals = np.zeros(size)
    masks = np.zeros(size, dtype=np.int64)
    matched_terms = np.zeros(size, dtype=np.int64)
    for i, term in enumerate(terms):
        btext = term.encode("utf-8")
        per_field = np.zeros((len(TEXT_FIELDS), size))
        for row, name in enumerate(TEXT_FIELDS):
            where, weight = reference_term_postings(reader, name, btext)
            if not len(where):
                continue
            b, k1 = scoring.BM25_B, scoring.BM25_K1
            norm = 1 - b + b * lengths[row, where] / (searcher.avg_field_length(name) or 1)
            per_field[row, where] = (
                searcher.idf(name, btext) * weight * (k1 + 1) / (weight + k1 * norm)
            )
        best = per_field.max(axis=0)
        hit = best > 0
        totals += best + scoring.FIELD_TIEBREAK * (per_field.sum(axis=0) - best)
        masks[hit] |= 1 << i
        matched_terms += hit
    masks[~allowed] = 0
    docnums = np.flatnonzero(masks)
    scores = totals[docnums]
    if len(terms) > 1:
        scores *= 1 + scoring.COORD_BONUS * (matched_terms[docnums] - 1) / (len(terms) - 1)
    return scoring.Ranking(docnums, scores, masks[docnums])


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(
            " ".join(str(v) for v in item.values()) if isinstance(item, dict) else str(item)
            for item in value
        )
    return str(value or "")


def demo_docs() -> list[CampaignText]:
    """Return the demo campaigns COPIES times over, each copy with its own ids."""
    docs = []
    records = demo_records()
    for copy in range(COPIES):
        for n, r in enumerate(records):
            metrics = tuple(
                MetricFact(
                    m["name"], None, None, m.get("baseline"), m.get("target"), m.get("actual"),
                    None, None, None,
                )
                for m in r.get("metrics", [])
            )  # fmt: skip
            docs.append(
                CampaignText(
                    id=copy * 1000 + n + 1,
                    version=1,
                    title=r["title"],
                    industry=r["industry"],
                    department=r["department"],
                    business_line=r.get("business_line"),
                    goal_type=r["goal_type"],
                    status=r["status"],
                    start_date=date.fromisoformat(r["start_date"]),
                    end_date=date.fromisoformat(r["end_date"]),
                    budget_cny=r.get("budget_cny"),
                    audience=tuple(r.get("audience", [])),
                    products=tuple(r.get("products", [])),
                    channels=tuple(r.get("channels", [])),
                    reward_types=tuple(w["type"] for w in r.get("rewards", [])),
                    tags=tuple(r.get("tags", [])),
                    goal=r.get("goal", ""),
                    summary=r.get("summary", ""),
                    went_well=_text(r.get("went_well")),
                    problems=_text(r.get("problems")),
                    lessons=_text(r.get("lessons")),
                    recommendations=_text(r.get("recommendations")),
                    hypotheses=_text(r.get("hypotheses")),
                    documents=tuple((d["title"], d["body"]) for d in r.get("documents", [])),
                    metrics=metrics,
                )
            )
    return docs


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Return the demo index: segments of 300 campaigns, then deletions and replaced copies."""
    docs = demo_docs()
    index = KeywordIndex(tmp_path_factory.mktemp("kw") / "keyword")
    index.rebuild(docs, workers=1, segment_docs=300)
    index.delete(d.id for d in docs[::9])
    changed = list(docs[1::13])
    index.upsert(
        CampaignText(
            **{**{f: getattr(d, f) for f in d.__slots__}, "version": 2, "title": "直播复盘"}
        )
        for d in changed
    )
    yield index
    index.close()


QUERIES = [
    "双十一 满减券 叠加",
    "直播带货 退货率",
    "拼团 宝妈",
    "羊毛党 风控 新人红包",
    "会员 积分 核销率",
    "雙十一 優惠券 疊加",
    "coupon stacking ROI",
    "好几个月没再买过东西的顾客，怎么把他们拉回来",
    "复盘",
    "直播",
    "活动",
    "不存在的词汇组合xyz",
]
FILTERS = [
    SearchFilters(),
    SearchFilters(industry="电商"),
    SearchFilters(status="completed", channel=("短信",)),
    SearchFilters(date_from=date(2023, 1, 1), date_to=date(2024, 6, 30)),
    SearchFilters(ids=frozenset(range(1, 2000, 3))),
]


def search_both(
    index: KeywordIndex, monkeypatch: pytest.MonkeyPatch, query: str, **kwargs: Any
) -> tuple[KeywordResult, KeywordResult]:
    monkeypatch.setattr(storage, "rank", reference_rank)
    before = index.search(query, **kwargs)
    monkeypatch.setattr(storage, "rank", scoring.rank)
    return before, index.search(query, **kwargs)


def assert_same(before: KeywordResult, after: KeywordResult) -> None:
    assert after.total == before.total
    assert after.facets == before.facets
    assert [(h.campaign_id, h.terms) for h in after.hits] == [
        (h.campaign_id, h.terms) for h in before.hits
    ]
    for a, b in zip(after.hits, before.hits, strict=True):
        assert abs(a.score - b.score) <= 1e-9


def test_index_spans_blocks_segments_and_deletions(index: KeywordIndex) -> None:
    reader = index._current().searcher.reader()  # type: ignore[union-attr]
    leaf = max((leaf for leaf, _ in reader.leaf_readers()), key=lambda leaf: leaf.doc_count_all())
    assert len(list(reader.leaf_readers())) >= 3
    assert reader.doc_count() < reader.doc_count_all()
    # Common terms span more than one 128-posting block of a segment (read block by block).
    assert max(leaf.doc_frequency("body", t) for t in leaf.lexicon("body")) > 128


@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
def test_results_equal_the_matcher_path(
    index: KeywordIndex, monkeypatch: pytest.MonkeyPatch, filters: SearchFilters
) -> None:
    for cold in (True, False):
        for query in QUERIES:
            if cold:
                index._segments.postings.clear()
            before, after = search_both(
                index, monkeypatch, query, filters=filters, limit=100, facets=True
            )
            assert_same(before, after)
            if query != "不存在的词汇组合xyz":
                assert before.total > 0 or not filters.is_empty
    assert len(index._segments.postings) > 0


def test_pages_and_metric_filter_equal_the_matcher_path(
    index: KeywordIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    filters = SearchFilters(metrics=(MetricRange("key", "attain", None, 100.0),))
    for offset, limit in ((0, 5), (5, 5), (37, 20), (200, 10)):
        before, after = search_both(
            index,
            monkeypatch,
            "活动 复盘 直播",
            filters=SearchFilters(),
            limit=limit,
            offset=offset,
        )
        assert_same(before, after)
    before, after = search_both(index, monkeypatch, "活动", filters=filters, limit=50)
    assert_same(before, after)


def live_pairs(found: Any, live: set[int]) -> list[tuple[int, float]]:
    """Return the (document, weight) pairs of live documents.

    Whoosh's matcher skips a segment's deleted documents at the start of a posting list (its
    deletion filter advances it on creation), the other readers keep them; callers mask them.
    """
    return [(d, w) for d, w in zip(found[0].tolist(), found[1].tolist(), strict=True) if d in live]


def test_every_term_reads_as_the_matcher_reads_it(index: KeywordIndex) -> None:
    reader = index._current().searcher.reader()  # type: ignore[union-attr]
    fast = 0
    for leaf, _ in reader.leaf_readers():
        mapped = MappedSegment(leaf)
        live = set(leaf.all_doc_ids())
        for name in (*TEXT_FIELDS, "industry", "channel", "end_date", "id"):
            for btext in leaf.lexicon(name):
                want = live_pairs(postings.matcher_postings(leaf, name, btext), live)
                from_file = postings.leaf_postings(leaf, name, btext)
                from_map = mapped.postings(name, btext)
                assert from_map is not None
                for got in (from_file, from_map):
                    assert got[0].dtype == np.int64
                    assert got[1].dtype == np.float64
                    assert live_pairs(got, live) == want, (name, btext)
                    # Deleted documents stay in (callers mask them), in order.
                    assert got[0].tolist() == sorted(got[0].tolist())
                terminfo = leaf.term_info(name, btext)
                fast += postings._extent_postings(leaf, terminfo) is not None
        assert mapped.postings("body", b"absent-term") is None
        assert mapped.postings("nofield", b"3") is None
        mapped.close()
    assert fast > 1000  # the extent reader is the one compared, not the matcher fallback


def test_unmapped_segments_read_through_whoosh() -> None:
    schema = whoosh_fields.Schema(key=whoosh_fields.ID(stored=True), body=whoosh_fields.TEXT())
    ram = RamStorage().create_index(schema)
    with ram.writer() as writer:
        for n in range(300):
            writer.add_document(key=str(n), body=" ".join(["word", f"x{n % 7}", f"solo{n}"]))
    with ram.searcher() as searcher:
        leaf = next(iter(searcher.reader().leaf_readers()))[0]
        with pytest.raises(ValueError, match="compound"):
            MappedSegment(leaf)
        cache = PostingsCache(max_bytes=1 << 20)
        for btext in (b"word", b"x3", b"solo5", b"absent"):
            found = cache.get(leaf, "body", btext)
            want = postings.matcher_postings(leaf, "body", btext) if btext != b"absent" else None
            if want is None:
                assert found is None
            else:
                assert found is not None
                assert found[0].tolist() == want[0].tolist()
                assert found[1].tolist() == want[1].tolist()


def test_cache_keeps_absence_and_drops_least_recent(index: KeywordIndex) -> None:
    reader = index._current().searcher.reader()  # type: ignore[union-attr]
    leaf = max((leaf for leaf, _ in reader.leaf_readers()), key=lambda leaf: leaf.doc_count_all())
    common = sorted(leaf.lexicon("body"), key=lambda t: -leaf.doc_frequency("body", t))[:8]
    cache = PostingsCache(max_bytes=3 * (leaf.doc_frequency("body", common[0]) * 16 + 400))
    assert cache.get(leaf, "body", b"absent-term") is None
    assert len(cache) == 1
    first = cache.get(leaf, "body", common[0])
    assert first is not None
    assert cache.get(leaf, "body", common[0]) is first  # served from the cache
    for btext in common[1:]:
        found = cache.get(leaf, "body", btext)
        assert found is not None
        assert found[0].tolist() == postings.matcher_postings(leaf, "body", btext)[0].tolist()
        assert cache.bytes <= cache.max_bytes
    assert 1 < len(cache) < 8
    assert (leaf.segment().segment_id(), "body", b"absent-term") not in cache._entries
    assert cache.get(leaf, "body", common[-1]) is cache.get(leaf, "body", common[-1])
    cache.clear()
    assert len(cache) == 0
    assert cache.bytes == 0
    assert cache._mapped  # still mapped: only the postings were forgotten
    cache.close()
    assert not cache._mapped
    assert len(cache) == 0
    assert cache.bytes == 0


def test_a_commit_is_seen_through_the_cache(tmp_path: Path) -> None:
    docs = demo_docs()[:30]
    with KeywordIndex(tmp_path / "kw") as index:
        index.rebuild(docs, workers=1)
        before = index.search("直播", filters=SearchFilters(), limit=100)
        index.upsert(
            [
                CampaignText(
                    **{
                        **{f: getattr(docs[0], f) for f in docs[0].__slots__},
                        "id": 999,
                        "title": "直播 直播",
                    }
                )
            ]
        )
        after = index.search("直播", filters=SearchFilters(), limit=100)
        assert after.total == before.total + 1
        assert 999 in [hit.campaign_id for hit in after.hits]
        index.delete([999])
        assert index.search("直播", filters=SearchFilters(), limit=100).total == before.total
        mapped_before = set(index._segments.postings._mapped)
        assert mapped_before
        index.rebuild(docs[:10], workers=1)  # new segments: the old ones are unmapped
        assert index.search("直播", filters=SearchFilters(), limit=100).total <= 10
        reader = index._current().searcher.reader()  # type: ignore[union-attr]
        live = {leaf.segment().segment_id() for leaf, _ in reader.leaf_readers()}
        assert set(index._segments.postings._mapped) <= live
        assert not mapped_before & set(index._segments.postings._mapped)
    assert not index._segments.postings._mapped  # closed
