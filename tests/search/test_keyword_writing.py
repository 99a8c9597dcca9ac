"""The keyword index's bulk writer: the same index as Whoosh's writer, in segments, in parallel."""

from __future__ import annotations

import json
import random
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.filedb.filestore import FileStorage

from search.documents import CampaignText, MetricFact
from search.keyword import KeywordIndex, MetricRange, SearchFilters, storage, writing
from search.keyword.fields import make_schema, to_fields
from search.keyword.writing import BatchSegmentWriter, IndexBuild

SENTENCES = [
    "今年双十一我们在企业微信社群做了拼团和任务宝裂变，新客首单满减券核销率达到32%。",
    "沉睡用户召回短信的点击率只有1.2%，唤醒效果不及预期。",
    "今年雙十一私域拉新活動的復購率提升，K值達到1.3。",
    "618 GMV 同比 +35%, ROI 1:4.2，直播带货贡献了六成成交额。",
    "Retention D30 improved after the livestream; conversion rose from 2.1% to 3.4%.",
    "问题：多个活动同时面向价格敏感用户，优惠叠加形成超级优惠，被羊毛党利用。",
    "门店到店核销率偏低，导购没有收到活动培训。",
]
WORDS = ["双十一", "企微", "社群", "拼团", "召回", "复购", "直播", "ROI", "羊毛党", "核销率"]


def make_docs(count: int, seed: int = 3) -> list[CampaignText]:
    """Return varied campaigns: empty fields, no metrics, Traditional text, shared words."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    docs = []
    for i in range(1, count + 1):
        start = date(2022, 1, 1) + timedelta(days=rng.randrange(900))
        metrics: tuple[MetricFact, ...] = ()
        if i % 3:
            roi = round(rng.uniform(0.5, 6), 2)
            metrics = (
                MetricFact("ROI", "roi", "higher", None, 3.0, roi, roi / 3 * 100, None, roi >= 3),
                MetricFact("GMV", "gmv", "higher", None, None, rng.uniform(10, 900), None, 5.0, None),
            )  # fmt: skip
        docs.append(
            CampaignText(
                id=i,
                version=1 + i % 4,
                title=f"{rng.choice(WORDS)}活动复盘 {i}",
                industry=rng.choice(["电商", "母婴", "生鲜"]),
                department="增长部",
                business_line=None if i % 5 else "优品汇",
                goal_type=rng.choice(["gmv", "retention", "acquisition"]),
                status=rng.choice(["completed", "planned"]),
                start_date=start,
                end_date=start + timedelta(days=rng.randrange(3, 40)),
                budget_cny=None,
                audience=tuple(rng.sample(["宝妈", "新用户", "学生"], rng.randint(0, 2))),
                products=(),
                channels=tuple(rng.sample(["短信", "小程序", "直播"], 2)),
                reward_types=("满减券",) if i % 2 else (),
                tags=tuple(rng.sample(WORDS, 2)),
                goal="" if i % 7 == 0 else rng.choice(SENTENCES),
                summary="".join(rng.choice(SENTENCES) for _ in range(rng.randint(0, 6))),
                lessons="" if i % 4 == 0 else rng.choice(SENTENCES),
                metrics=metrics,
            )
        )
    return docs


DOCS = make_docs(300)  # "双十一" and others occur in more than one 128-posting block


def whoosh_index(path: Path, docs: list[CampaignText]) -> Any:
    """Build with Whoosh's own writer, as the index was built before."""
    path.mkdir()
    index = FileStorage(str(path)).create_index(make_schema())
    writer = index.writer()
    for doc in docs:
        writer.add_document(**to_fields(doc))
    writer.commit()
    return index


def batch_index(path: Path, docs: list[CampaignText]) -> Any:
    """Build with BatchSegmentWriter, one segment."""
    path.mkdir(exist_ok=True)
    index = FileStorage(str(path)).create_index(make_schema())
    build = IndexBuild(index, segment_docs=len(docs), workers=1)
    build.add(docs)
    build.finish()
    return index


def contents(index: Any) -> list[Any]:
    """Return everything a reader sees: terms, term infos, every block, stored fields, lengths."""
    out: list[Any] = []
    with index.reader() as reader:
        for name in sorted(reader.indexed_field_names()):
            for btext in reader.lexicon(name):
                info = reader.term_info(name, btext)
                out.append(
                    (name, btext, info.weight(), info.doc_frequency(), info.min_length(),
                     info.max_length(), info.max_weight(), info.min_id(), info.max_id())
                )  # fmt: skip
                matcher = reader.postings(name, btext)
                assert type(matcher) is W3LeafMatcher
                while matcher.is_active():
                    matcher._read_data()
                    out.append(
                        (matcher._blocklength, matcher.block_max_weight(),
                         matcher.block_min_length(), matcher.block_max_length(), matcher._data)
                    )  # fmt: skip
                    matcher._next_block()
        for docnum in range(reader.doc_count_all()):
            out.append(sorted(reader.stored_fields(docnum).items()))
            out.append(
                [reader.doc_field_length(docnum, name) for name in sorted(index.schema.names())]
            )
        for name in ("id_num", "version", "start_date"):
            out.append(list(reader.column_reader(name)))
    return out


def test_batch_writer_writes_what_whoosh_writes(tmp_path: Path) -> None:
    reference = contents(whoosh_index(tmp_path / "whoosh", DOCS))
    assert len(reference) > 3000
    assert contents(batch_index(tmp_path / "batch", DOCS)) == reference


def test_more_than_one_block_per_term(tmp_path: Path) -> None:
    # The comparison above covers multi-block terms only if there are some.
    with batch_index(tmp_path, DOCS).reader() as reader:
        assert reader.doc_frequency("body", "双十一".encode()) > 128


QUERIES = ["双十一", "企微 社群", "召回 短信", "retention livestream", "羊毛党 叠加", "ROI"]
FILTERS = [
    SearchFilters(),
    SearchFilters(industry="母婴"),
    SearchFilters(metrics=(MetricRange("roi", "actual", 2.0, 4.0),)),
    SearchFilters(date_from=date(2023, 1, 1), audience=("宝妈",)),
]


def answers(index: KeywordIndex) -> list[Any]:
    """Return every query's full ranking with scores and facets, under each filter."""
    out: list[Any] = [index.versions(), index.count()]
    for filters in FILTERS:
        for query in [*QUERIES, ""]:
            result = index.search(query, filters=filters, limit=400, facets=True)
            out.append(([(h.campaign_id, round(h.score, 9), h.terms) for h in result.hits],
                        result.total, result.facets))  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("segment_docs", "workers"),
    [(64, 1), (70, 2)],  # several segments written here; several written by two processes
)
def test_segments_rank_as_one_index(tmp_path: Path, segment_docs: int, workers: int) -> None:
    with KeywordIndex(tmp_path / "one") as one:
        one.rebuild(DOCS, workers=1)
        reference = answers(one)
    with KeywordIndex(tmp_path / "split") as split:
        steps: list[int] = []
        added = split.rebuild(
            DOCS,
            segment_docs=segment_docs,
            workers=workers,
            total=len(DOCS),
            progress=steps.append,
        )
        assert added == len(DOCS)
        assert steps == sorted(set(steps))  # rising, never repeated
        assert steps[-1] == len(DOCS)
        with split._lock:
            snapshot = split._current()
            assert snapshot is not None
            assert len(snapshot.searcher.reader().leaf_readers()) == 5
        assert answers(split) == reference
        # Only the index's own files stay: no scratch directory, no old TOC.
        live = tmp_path / "split" / (tmp_path / "split" / storage.POINTER).read_text().strip()
        assert not [p for p in live.iterdir() if p.is_dir()]
        assert len(list(live.glob("_MAIN_*.toc"))) == 1


def test_workers_write_from_a_short_first_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers start after FIRST_SEGMENT_DOCS documents and write every segment, the first
    # one shorter; the index answers as one written in a single segment.
    monkeypatch.setattr(writing, "FIRST_SEGMENT_DOCS", 40)
    with KeywordIndex(tmp_path / "one") as one:
        one.rebuild(DOCS, workers=1)
        reference = answers(one)
    with KeywordIndex(tmp_path / "split") as split:
        assert split.rebuild(DOCS, segment_docs=100, workers=2) == len(DOCS)
        with split._lock:
            snapshot = split._current()
            assert snapshot is not None
            sizes = [r.doc_count_all() for r, _ in snapshot.searcher.reader().leaf_readers()]
        assert sizes[0] == 40
        assert sum(sizes) == len(DOCS)
        assert all(size == 100 for size in sizes[1:-1])
        assert answers(split) == reference


def test_build_smaller_than_a_first_segment_starts_no_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a worker process was started")

    monkeypatch.setattr(writing, "ProcessPoolExecutor", refuse)
    monkeypatch.setattr(writing, "FIRST_SEGMENT_DOCS", len(DOCS) + 1)
    with KeywordIndex(tmp_path / "small") as small:
        assert small.rebuild(DOCS, segment_docs=len(DOCS) + 1, workers=2) == len(DOCS)
        assert small.count() == len(DOCS)


def test_index_built_in_segments_takes_writes(tmp_path: Path) -> None:
    with KeywordIndex(tmp_path) as index:
        index.rebuild(DOCS, segment_docs=100, workers=1)
        changed = DOCS[0].__class__(**{**_fields(DOCS[0]), "version": 9, "title": "全新标题 ZZQ"})
        index.upsert([changed])
        index.delete([2])
        assert [
            h.campaign_id for h in index.search("ZZQ", filters=SearchFilters(), limit=5).hits
        ] == [1]
        assert 2 not in index.versions()
        assert index.versions()[1] == 9


def _fields(doc: CampaignText) -> dict[str, Any]:
    return {name: getattr(doc, name) for name in doc.__dataclass_fields__}


def test_progress_is_visible_to_other_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "_BUILDING_EVERY", 50)
    with KeywordIndex(tmp_path) as builder, KeywordIndex(tmp_path) as other:
        builder.rebuild(DOCS[:10])
        seen: list[tuple[int, Any]] = []

        def during(added: int) -> None:
            progress = other.build_progress()
            seen.append((added, progress and (progress.added, progress.total)))
            assert other.count() == 10  # the old index serves meanwhile

        builder.rebuild(DOCS, progress=during, total=len(DOCS), segment_docs=120, workers=1)
        assert other.count() == len(DOCS)
        assert other.build_progress() is None
    added = [a for a, _ in seen]
    assert added == sorted(added)
    assert added[-1] == len(DOCS)
    # The file lags the callback by less than _BUILDING_EVERY documents, and knows the total.
    for count, shown in seen:
        assert shown is not None
        assert shown[1] == len(DOCS)
        assert count - 50 < shown[0] <= count


def test_progress_left_by_a_dead_build_is_ignored(tmp_path: Path) -> None:
    with KeywordIndex(tmp_path) as index:
        index.rebuild(DOCS[:3])
        (tmp_path / storage.BUILDING).write_text(
            json.dumps({"dir": "x", "added": 5, "total": 9, "started_at": 1.0})
        )
        assert index.build_progress() is None  # nobody holds the rebuild lock
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with index._rebuild_lock():
                held.set()
                release.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        held.wait(10)
        try:
            progress = index.build_progress()
            assert progress is not None
            assert (progress.added, progress.total) == (5, 9)
        finally:
            release.set()
            thread.join()


def test_failed_segment_leaves_the_old_index(tmp_path: Path) -> None:
    with KeywordIndex(tmp_path) as index:
        index.rebuild(DOCS[:5])

        def docs() -> Any:
            yield from DOCS[:150]
            raise RuntimeError("database went away")

        with pytest.raises(RuntimeError):
            index.rebuild(docs(), segment_docs=100, workers=1)
        assert index.count() == 5
        assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [
            (tmp_path / storage.POINTER).read_text().strip()
        ]
        assert index.build_progress() is None


def test_writer_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    index = FileStorage(str(tmp_path)).create_index(make_schema())
    writer = BatchSegmentWriter(index)
    with pytest.raises(ValueError, match="boosts"):
        writer.add_document(id="1", _boost=2.0)
    writer.cancel()
