"""Tests for the keyword index: writing, ranking, synonyms, filters, facets, versioning."""

from __future__ import annotations

import dataclasses
import gc
import time
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from whoosh import query

from search import analysis, keyword
from search.documents import CampaignText, MetricFact
from search.keyword import (
    IndexBusyError,
    IndexUnavailableError,
    KeywordIndex,
    MetricRange,
    SearchFilters,
)

NO_FILTERS = SearchFilters()


def metric(
    name: str,
    key: str | None,
    actual: float | None,
    *,
    target: float | None = None,
    attainment: float | None = None,
    lift: float | None = None,
    hit: bool | None = None,
) -> MetricFact:
    """Return a metric fact with only the values a test cares about."""
    return MetricFact(name, key, "higher", None, target, actual, attainment, lift, hit)


def campaign(campaign_id: int, title: str, **overrides: object) -> CampaignText:
    """Return a campaign with neutral defaults, overridden where a test needs it."""
    values: dict[str, object] = {
        "id": campaign_id,
        "version": 1,
        "title": title,
        "industry": "电商",
        "department": "增长部",
        "business_line": None,
        "goal_type": "gmv",
        "status": "completed",
        "start_date": date(2023, 1, 1),
        "end_date": date(2023, 1, 31),
        "budget_cny": None,
        "audience": (),
        "products": (),
        "channels": (),
        "reward_types": (),
        "tags": (),
    }
    values.update(overrides)
    return CampaignText(**values)  # type: ignore[arg-type]


DOCS = [
    campaign(
        1,
        "2023 双十一全站大促复盘",
        audience=("价格敏感用户", "宝妈"),
        channels=("App推送", "短信"),
        reward_types=("满减券",),
        tags=("大促", "叠券"),
        start_date=date(2023, 10, 24),
        end_date=date(2023, 11, 11),
        summary="四类优惠叠加，GMV 达标但毛利下滑。",
        lessons="多券叠加必须有最低成交价护栏。",
        metrics=(
            metric("ROI", "roi", 2.1, target=3.5, attainment=60.0, lift=-44.7, hit=False),
            metric("GMV", "gmv", 12640, target=12000, attainment=105.3, lift=37.0, hit=True),
        ),
    ),
    campaign(
        2,
        "沉睡用户召回短信",
        industry="生鲜",
        goal_type="reactivation",
        audience=("沉睡用户",),
        channels=("短信",),
        reward_types=("优惠券",),
        start_date=date(2023, 3, 1),
        end_date=date(2023, 3, 31),
        summary="给 90 天未下单用户发券，召回率 8%。",
        metrics=(metric("ROI", "roi", 2.5, target=2.0, attainment=125.0, hit=True),),
    ),
    campaign(
        3,
        "企业微信社群周三秒杀",
        industry="母婴",
        goal_type="activation",
        audience=("宝妈", "新用户"),
        channels=("企业微信",),
        reward_types=("折扣",),
        start_date=date(2023, 5, 1),
        end_date=date(2023, 6, 30),
        summary="每周三在社群推送秒杀，群活跃度稳定。",
        metrics=(metric("ROI", "roi", 3.2, target=4.0, attainment=80.0, hit=False),),
    ),
    campaign(
        4,
        "雙十二預熱活動",
        industry="母嬰",
        audience=("寶媽",),
        channels=("小程序",),
        reward_types=("滿減券",),
        start_date=date(2023, 12, 1),
        end_date=date(2023, 12, 12),
        summary="預熱期在小程序上線，轉化率不錯。",
    ),
    campaign(
        5,
        "Referral poster campaign",
        industry="在线教育",
        goal_type="referral",
        audience=("New Users",),
        channels=("WeChat Moments",),
        start_date=date(2022, 9, 1),
        end_date=date(2022, 9, 30),
        summary="The referral poster doubled sign-ups among new users.",
        metrics=(metric("Conversion rate", "conversion_rate", 3.4, target=5.0, attainment=68.0),),
    ),
    campaign(
        6,
        "会员复购激励计划",
        industry="美妆",
        goal_type="retention",
        status="running",
        audience=("高价值会员",),
        start_date=date(2024, 2, 1),
        end_date=date(2024, 4, 30),
        summary="积分翻倍，限时加赠小样。",
    ),
    campaign(
        7,
        "积分商城改版",
        industry="美妆",
        goal_type="retention",
        audience=("高价值会员",),
        start_date=date(2023, 7, 1),
        end_date=date(2023, 7, 31),
        summary="积分商城上新，会员复购有所提升。",
    ),
    campaign(
        8,
        "618 直播预售",
        status="planned",
        channels=("直播",),
        start_date=date(2024, 6, 1),
        end_date=date(2024, 6, 18),
        summary="主播连麦预售，定金膨胀。",
    ),
]


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a directory holding an index of DOCS; tests on it must not write."""
    directory = tmp_path_factory.mktemp("keyword")
    with KeywordIndex(directory) as ix:
        ix.rebuild(DOCS)
    return directory


@pytest.fixture
def ix(shared_dir: Path) -> KeywordIndex:
    """Return a read-only view of the shared index."""
    with KeywordIndex(shared_dir) as index:
        yield index  # type: ignore[misc]


@pytest.fixture
def fresh(tmp_path: Path) -> KeywordIndex:
    """Return a private, writable index of DOCS."""
    with KeywordIndex(tmp_path / "kw") as index:
        index.rebuild(DOCS)
        yield index  # type: ignore[misc]


def ids(ix: KeywordIndex, text: str, filters: SearchFilters = NO_FILTERS) -> list[int]:
    """Return the ids of every hit, in rank order."""
    return [hit.campaign_id for hit in ix.search(text, filters=filters, limit=100).hits]


# Writing


def test_rebuild_indexes_every_document(ix: KeywordIndex) -> None:
    assert ix.is_usable
    assert not ix.is_stale
    assert ix.count() == len(DOCS)
    assert ix.versions() == {doc.id: 1 for doc in DOCS}


def test_upsert_replaces_by_id_and_adds(fresh: KeywordIndex) -> None:
    fresh.upsert(
        [
            dataclasses.replace(DOCS[7], version=2, title="618 直播复盘", summary="连麦效果好。"),
            campaign(9, "新品试用装派样", version=1),
        ]
    )
    assert fresh.count() == 9
    assert fresh.versions()[8] == 2
    assert fresh.versions()[9] == 1
    assert ids(fresh, "预售") == []  # the old text is gone
    assert ids(fresh, "派样") == [9]


def test_upsert_ignores_an_older_version(fresh: KeywordIndex) -> None:
    fresh.upsert([dataclasses.replace(DOCS[7], version=5, title="蓝莓计划")])
    fresh.upsert([dataclasses.replace(DOCS[7], version=4, title="草莓计划")])
    assert fresh.versions()[8] == 5
    assert ids(fresh, "蓝莓") == [8]
    assert ids(fresh, "草莓") == []


def test_upsert_keeps_the_newest_of_one_batch(fresh: KeywordIndex) -> None:
    fresh.upsert(
        [
            dataclasses.replace(DOCS[0], version=3, title="蓝莓计划"),
            dataclasses.replace(DOCS[0], version=2, title="草莓计划"),
        ]
    )
    assert fresh.count() == len(DOCS)
    assert fresh.versions()[1] == 3
    assert ids(fresh, "蓝莓") == [1]


def test_delete_removes_documents(fresh: KeywordIndex) -> None:
    fresh.delete([2, 3, 404])
    assert fresh.count() == 6
    assert set(fresh.versions()) == {1, 4, 5, 6, 7, 8}
    assert ids(fresh, "召回") == []


def test_empty_batches_do_nothing(fresh: KeywordIndex) -> None:
    fresh.upsert([])
    fresh.delete([])
    assert fresh.count() == len(DOCS)


# Ranking and analysis


def test_title_outranks_body(ix: KeywordIndex) -> None:
    assert ids(ix, "复购") == [6, 7]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("双11", 1),
        ("double eleven", 1),
        ("唤醒", 2),
        ("企微", 3),
        ("双十二", 4),  # the document is Traditional
        ("宝妈 预热", 4),
        ("referrals", 5),  # stemmed
        ("复购", 6),
    ],
)
def test_query_finds_synonyms_and_variants(ix: KeywordIndex, text: str, expected: int) -> None:
    assert ids(ix, text)[0] == expected


def test_hits_report_the_matched_query_terms(ix: KeywordIndex) -> None:
    result = ix.search("唤醒 短信 直播", filters=NO_FILTERS, limit=10)
    by_id = {hit.campaign_id: hit for hit in result.hits}
    assert by_id[2].terms == ("召回", "短信")
    assert by_id[1].terms == ("短信",)
    assert by_id[8].terms == ("直播",)
    assert all(hit.score > 0 for hit in result.hits)


def test_more_distinct_terms_rank_higher(tmp_path: Path) -> None:
    # One document repeats one query word in its title; the other holds both words once, in
    # weaker fields. A retro about "短信 + 召回" is the better answer to "短信召回".
    docs = [
        campaign(1, "召回召回：召回专项", summary="召回策略总览。召回要早做。"),
        campaign(2, "老客关怀", summary="用短信做老客召回，效果稳定。"),
    ]
    with KeywordIndex(tmp_path) as index:
        index.rebuild(docs)
        assert ids(index, "短信 召回") == [2, 1]


def test_scores_follow_the_documented_formula(shared_dir: Path, ix: KeywordIndex) -> None:
    # Recompute every score from Whoosh's single-field term scores, which are reliable.
    from whoosh.index import open_dir

    terms = keyword.query_terms("短信 宝妈 会员 积分")
    expected: dict[int, float] = {}
    matched: dict[int, int] = {}
    live = shared_dir / (shared_dir / "CURRENT").read_text().strip()
    with open_dir(str(live)).searcher() as searcher:
        for term in terms:
            per_doc: dict[int, list[float]] = {}
            for name in keyword.TEXT_FIELDS:
                for hit in searcher.search(query.Term(name, term), limit=None):
                    per_doc.setdefault(int(hit["id"]), []).append(hit.score)
            for campaign_id, scores in per_doc.items():
                best = max(scores)
                total = best + keyword.FIELD_TIEBREAK * (sum(scores) - best)
                expected[campaign_id] = expected.get(campaign_id, 0.0) + total
                matched[campaign_id] = matched.get(campaign_id, 0) + 1
    for campaign_id, count in matched.items():
        expected[campaign_id] *= 1 + keyword.COORD_BONUS * (count - 1) / (len(terms) - 1)
    result = ix.search("短信 宝妈 会员 积分", filters=NO_FILTERS, limit=100)
    assert {hit.campaign_id: hit.score for hit in result.hits} == pytest.approx(expected)
    assert [hit.score for hit in result.hits] == pytest.approx(sorted(expected.values())[::-1])


def test_ties_break_by_index_order() -> None:
    ranking = keyword.Ranking(
        docnums=np.array([5, 3, 9, 1]),
        scores=np.array([1.0, 2.0, 2.0, 2.0]),
        masks=np.array([1, 1, 1, 1]),
    )
    assert ranking.top(2) == [3, 1]  # docnums 1 and 3 of the three tied at 2.0
    assert ranking.top(9) == [3, 1, 2, 0]
    assert ranking.top(0) == []


def test_stop_words_alone_match_nothing(ix: KeywordIndex) -> None:
    result = ix.search("的 了，。", filters=NO_FILTERS, limit=10, facets=True)
    assert result.hits == []
    assert result.total == 0


def test_paging_and_total(ix: KeywordIndex) -> None:
    everything = ids(ix, "")
    page = ix.search("", filters=NO_FILTERS, limit=3, offset=3)
    assert page.total == len(DOCS)
    assert [hit.campaign_id for hit in page.hits] == everything[3:6]
    scored = ix.search("短信 宝妈 会员", filters=NO_FILTERS, limit=1, offset=1)
    assert scored.total == 6  # 1, 2, 3, 4 (寶媽), 6, 7
    assert [h.campaign_id for h in scored.hits] == ids(ix, "短信 宝妈 会员")[1:2]


def test_snippet_marks_synonyms() -> None:
    text = "这次活动主要通过企业微信社群触达用户。"
    assert "<mark>企业微信" in keyword.snippet(text, "企微")
    assert KeywordIndex.snippet(text, "企微", max_len=8) == keyword.snippet(text, "企微", 8)


# Filters


FILTER_CASES = [
    (SearchFilters(industry="美妆"), {6, 7}),
    (SearchFilters(industry="母婴"), {3, 4}),  # 母嬰 is indexed as 母婴
    (SearchFilters(audience=("宝妈",)), {1, 3, 4}),
    (SearchFilters(audience=("寶媽",)), {1, 3, 4}),
    (SearchFilters(audience=("宝妈", "新用户")), {3}),  # all must match
    (SearchFilters(audience=("new users",)), {5}),
    (SearchFilters(channel=("app推送", "短信")), {1}),
    (SearchFilters(reward_type=("满减券",)), {1, 4}),
    (SearchFilters(status="planned"), {8}),
    (SearchFilters(tag=("大促",)), {1}),
    (SearchFilters(goal_type="retention", status="completed"), {7}),
    # Ran at any time between 1 and 30 November 2023.
    (SearchFilters(date_from=date(2023, 11, 1), date_to=date(2023, 11, 30)), {1}),
    (SearchFilters(date_from=date(2024, 1, 1)), {6, 8}),
    (SearchFilters(date_to=date(2022, 12, 31)), {5}),
    (SearchFilters(metrics=(MetricRange("roi", "actual", 2, None),)), {1, 2, 3}),
    (SearchFilters(metrics=(MetricRange("roi", "actual", 2.2, 3.2),)), {2}),  # [low, high)
    (SearchFilters(metrics=(MetricRange("key", "attain", None, 80),)), {1, 5}),
    (SearchFilters(metrics=(MetricRange("gmv", "lift", 30, None),)), {1}),
    (SearchFilters(metrics=(MetricRange("roi", "actual"),)), {1, 2, 3}),  # measured at all
    (SearchFilters(missed=True), {1, 3}),
    (SearchFilters(missed=False), {2, 4, 5, 6, 7, 8}),
    (SearchFilters(industry="电商", missed=True), {1}),
    (SearchFilters(ids=frozenset({2, 3, 99})), {2, 3}),
    (SearchFilters(ids=frozenset()), set()),
]


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES)
def test_filters(ix: KeywordIndex, filters: SearchFilters, expected: set[int]) -> None:
    assert set(ids(ix, "", filters)) == expected
    assert ix.matching_ids(filters) == expected


def test_filters_agree_with_whoosh_queries(fresh: KeywordIndex) -> None:
    # The index filters with NumPy masks; Whoosh's own queries are the reference, here over
    # several segments with replaced and deleted documents.
    fresh.upsert(
        [dataclasses.replace(DOCS[0], version=2, industry="美妆", end_date=date(2024, 1, 5))]
    )
    fresh.delete([3])
    with fresh._lock:
        snap = fresh._current()
        assert snap is not None
        by_doc = snap.ids().by_doc
        for filters, _ in FILTER_CASES:
            reference = filters.to_query()
            assert reference is not None
            expected = {by_doc[d] for d in snap.searcher.docs_for_query(reference)}
            assert fresh.matching_ids(filters) == expected, filters


def test_an_unclosed_index_releases_its_files_when_collected(shared_dir: Path) -> None:
    # Its segment files stay open (no mmap); collected in a cycle, as a dropped Flask app is,
    # they must be closed before their own finalizers warn (warnings are errors here).
    index = KeywordIndex(shared_dir)
    assert index.count() == len(DOCS)
    holder: dict[str, object] = {"index": index}
    holder["self"] = holder
    del index, holder
    gc.collect()


def test_filters_restrict_a_text_query(ix: KeywordIndex) -> None:
    assert ids(ix, "短信", SearchFilters(industry="生鲜")) == [2]


def test_empty_query_lists_by_start_date_descending(ix: KeywordIndex) -> None:
    result = ix.search("", filters=SearchFilters(industry="电商"), limit=10)
    assert [hit.campaign_id for hit in result.hits] == [8, 1]
    assert all(hit.score == 0 and hit.terms == () for hit in result.hits)
    assert ids(ix, "") == [8, 6, 4, 1, 7, 3, 2, 5]


def test_no_filters(ix: KeywordIndex) -> None:
    assert NO_FILTERS.to_query() is None
    assert SearchFilters(industry="", audience=(" ",)).to_query() is None
    assert ix.matching_ids(NO_FILTERS) is None


@pytest.mark.parametrize(
    "args",
    [
        ("ROI", "actual", None, None),
        ("roi", "median", None, None),
        ("key", "actual", None, None),
        ("roi", "actual", 3, 2),
        ("roi", "actual", float("nan"), None),
    ],
)
def test_invalid_metric_ranges_are_rejected(args: tuple[object, ...]) -> None:
    with pytest.raises(ValueError, match=r"metric|low|bounds|indexed"):
        MetricRange(*args)  # type: ignore[arg-type]


# Facets


def test_facets_count_the_whole_result_set(ix: KeywordIndex) -> None:
    result = ix.search("", filters=NO_FILTERS, limit=2, facets=True)
    assert len(result.hits) == 2
    assert result.facets["industry"] == {"电商": 2, "美妆": 2, "母婴": 2, "在线教育": 1, "生鲜": 1}
    assert result.facets["audience"]["宝妈"] == 3
    assert result.facets["channel"]["短信"] == 2
    assert result.facets["reward_type"]["满减券"] == 2
    assert result.facets["status"] == {"completed": 6, "planned": 1, "running": 1}
    assert set(result.facets) == set(keyword.FACET_FIELDS)


def test_facets_of_a_text_query_with_filters(ix: KeywordIndex) -> None:
    result = ix.search(
        "短信 宝妈 会员", filters=SearchFilters(status="completed"), limit=1, facets=True
    )
    assert result.total == 5  # 1, 2, 3, 4, 7 (6 is running)
    assert result.facets["industry"] == {"电商": 1, "美妆": 1, "母婴": 2, "生鲜": 1}
    assert result.facets["goal_type"] == {
        "activation": 1,
        "gmv": 2,
        "reactivation": 1,
        "retention": 1,
    }


def test_facets_follow_updates_and_deletes(fresh: KeywordIndex) -> None:
    fresh.upsert([dataclasses.replace(DOCS[5], version=2, industry="生鲜")])
    fresh.delete([7])
    everything = fresh.search("", filters=NO_FILTERS, limit=1, facets=True)
    assert everything.total == 7
    assert everything.facets["industry"] == {"生鲜": 2, "电商": 2, "母婴": 2, "在线教育": 1}
    scored = fresh.search("会员", filters=NO_FILTERS, limit=1, facets=True)
    assert scored.total == 1
    assert scored.facets["industry"] == {"生鲜": 1}
    assert fresh.facet_counts([6, 7])["industry"] == {"生鲜": 1}


def test_facet_counts_for_given_ids(ix: KeywordIndex) -> None:
    counts = ix.facet_counts([3, 4, 999])
    assert counts["industry"] == {"母婴": 2}
    assert counts["audience"] == {"宝妈": 2, "新用户": 1}
    assert ix.facet_counts([])["industry"] == {}


# Versioning, staleness and failures


def test_rebuild_switches_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "kw"
    with KeywordIndex(directory) as writer_side, KeywordIndex(directory) as reader_side:
        writer_side.rebuild(DOCS[:2])
        old = (directory / "CURRENT").read_text().strip()
        assert ids(reader_side, "双十一") == [1]
        seen: list[int] = []

        def during_build(added: int) -> None:
            # Everything is added, nothing switched yet: readers still get the old index.
            seen.append(added)
            assert (directory / "CURRENT").read_text().strip() == old
            assert ids(reader_side, "双十一") == [1]
            assert ids(reader_side, "企微") == []

        monkeypatch.setattr(keyword.writing, "PROGRESS_EVERY", 2)
        writer_side.rebuild(DOCS[2:5], progress=during_build)
        assert seen == [2, 3]
        new = (directory / "CURRENT").read_text().strip()
        assert new != old
        assert new.startswith(analysis.analyzer_fingerprint()[:16])
        assert not (directory / old).exists()
        assert sorted(p.name for p in directory.iterdir() if p.is_dir()) == [new]
        assert ids(reader_side, "双十一") == []
        assert ids(reader_side, "企微") == [3]
        assert writer_side.count() == reader_side.count() == 3


def test_failed_rebuild_keeps_the_old_index(tmp_path: Path) -> None:
    with KeywordIndex(tmp_path) as index:
        index.rebuild(DOCS[:2])
        old = (tmp_path / "CURRENT").read_text()

        def docs() -> object:
            yield DOCS[2]
            raise RuntimeError("database went away")

        with pytest.raises(RuntimeError, match="went away"):
            index.rebuild(docs())  # type: ignore[arg-type]
        assert (tmp_path / "CURRENT").read_text() == old
        assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [old.strip()]
        assert index.count() == 2


def test_concurrent_rebuild_is_refused(tmp_path: Path) -> None:
    with KeywordIndex(tmp_path) as first, KeywordIndex(tmp_path) as second:

        def nested(_added: int) -> None:
            second.rebuild([])

        with pytest.raises(IndexBusyError):
            first.rebuild(DOCS[:1], progress=nested)


def test_missing_index_is_stale_and_unusable(tmp_path: Path) -> None:
    with KeywordIndex(tmp_path / "nothing-here") as index:
        assert index.is_stale
        assert not index.is_usable
        result = index.search("双十一", filters=NO_FILTERS, limit=10, facets=True)
        assert result.hits == []
        assert result.facets["industry"] == {}
        assert index.count() == 0
        assert index.versions() == {}
        assert index.matching_ids(SearchFilters(industry="电商")) == set()
        with pytest.raises(IndexUnavailableError):
            index.upsert(DOCS[:1])
        index.rebuild([])
        assert index.is_usable
        assert not index.is_stale
        assert index.count() == 0
        for text in ("", "双十一"):
            empty = index.search(text, filters=SearchFilters(industry="电商"), limit=5, facets=True)
            assert (empty.hits, empty.total, empty.facets["industry"]) == ([], 0, {})
        assert index.versions() == {}
        assert index.facet_counts([1])["audience"] == {}


def test_stale_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with KeywordIndex(tmp_path) as index:
        index.rebuild(DOCS[:1])
    monkeypatch.setattr(analysis, "analyzer_fingerprint", lambda: "f" * 64)
    with KeywordIndex(tmp_path) as index:
        assert index.is_stale
        assert index.is_usable  # the old index still serves until the rebuild
        assert ids(index, "双十一") == [1]
        index.rebuild(DOCS[:1])
        assert not index.is_stale
        assert (tmp_path / "CURRENT").read_text().startswith("f" * 16)


@pytest.mark.parametrize(
    "pointer", ["../../etc\n", "", "0123456789abcdef-99\n", "\udcff"], ids=repr
)
def test_bad_pointer_is_unusable(tmp_path: Path, pointer: str) -> None:
    with KeywordIndex(tmp_path) as index:
        index.rebuild(DOCS[:1])
    (tmp_path / "CURRENT").write_bytes(pointer.encode("utf-8", "surrogateescape"))
    with KeywordIndex(tmp_path) as index:
        assert not index.is_usable
        assert index.is_stale
        assert index.problem
        assert ids(index, "双十一") == []


def test_corrupt_index_files_are_unusable(tmp_path: Path) -> None:
    with KeywordIndex(tmp_path) as index:
        index.rebuild(DOCS[:1])
    live = tmp_path / (tmp_path / "CURRENT").read_text().strip()
    for path in live.iterdir():
        path.write_bytes(b"\x00garbage")
    with KeywordIndex(tmp_path) as index:
        assert not index.is_usable
        assert index.is_stale
        index.rebuild(DOCS[:1])  # and the app's rebuild repairs it
        assert ids(index, "双十一") == [1]


def test_two_objects_see_each_others_writes(tmp_path: Path) -> None:
    # Like two gunicorn workers: one writes, the other sees it at its next call.
    with KeywordIndex(tmp_path) as one, KeywordIndex(tmp_path) as two:
        one.rebuild(DOCS[:2])
        assert ids(two, "企微") == []
        one.upsert([DOCS[2]])
        assert ids(two, "企微") == [3]
        two.delete([3])
        assert ids(one, "企微") == []
        assert one.versions() == two.versions() == {1: 1, 2: 1}


def test_write_waits_for_another_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from whoosh.index import LockError

    with KeywordIndex(tmp_path) as one, KeywordIndex(tmp_path) as two:
        one.rebuild(DOCS[:1])
        monkeypatch.setattr(keyword.storage, "WRITE_TIMEOUT_S", 0.3)
        with one._writer(), pytest.raises(LockError):  # held as by a slow commit
            two.upsert([DOCS[1]])
        two.upsert([DOCS[1]])
        assert one.count() == 2


def test_threads_search_while_another_writes(tmp_path: Path) -> None:
    # Flask's threaded server: searches from many threads while the indexer commits.
    import threading

    errors: list[BaseException] = []
    with KeywordIndex(tmp_path) as index:
        index.rebuild(DOCS)

        def searching() -> None:
            try:
                for _ in range(20):
                    result = index.search("短信 宝妈", filters=NO_FILTERS, limit=5, facets=True)
                    assert result.total >= 4
                    index.facet_counts([1, 2, 3])
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=searching) for _ in range(4)]
        for thread in threads:
            thread.start()
        for n in range(5):
            index.upsert([dataclasses.replace(DOCS[0], version=2 + n)])
        for thread in threads:
            thread.join()
        assert errors == []
        assert index.versions()[1] == 6
        assert index.count() == len(DOCS)


def test_a_failed_commit_releases_the_write_lock(
    fresh: KeywordIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whoosh.writing import SegmentWriter

    real_commit = SegmentWriter.commit

    def failing_commit(self: SegmentWriter, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(SegmentWriter, "commit", failing_commit)
    with pytest.raises(OSError, match="disk full"):
        fresh.upsert([dataclasses.replace(DOCS[7], version=9, title="蓝莓计划")])
    monkeypatch.setattr(SegmentWriter, "commit", real_commit)
    started = time.monotonic()
    fresh.upsert([dataclasses.replace(DOCS[7], version=10, title="草莓计划")])
    assert time.monotonic() - started < 2  # not a wait for a lock nobody holds
    assert [hit.campaign_id for hit in fresh.search("草莓计划", filters=NO_FILTERS, limit=5).hits][
        :1
    ] == [DOCS[7].id]
