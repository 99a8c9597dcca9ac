"""Measure the keyword index: build rate, query latency with and without facets and filters.

Run: .venv/bin/python bench/keyword_bench.py [--workers W] [--no-before] [N ...]
     (default: 1000 10000)

Documents are generated, about 3 KB of UTF-8 each, mixed as real retros are. The build is timed
twice in the same run: "before", Whoosh's own writer as the index was built until issue 17
(``IndexWriter.add_document`` for every document, one segment, numbers indexed with Whoosh's
tiered terms), and "after", ``KeywordIndex.rebuild`` (search/keyword/writing.py: batches of
segments written a term at a time, text analyzed in worker processes past 2,000 documents).
Both report wall time and CPU time (this process, and the analysis workers), and the two
indexes are checked to rank every timed query the same. Latencies are wall time of
``KeywordIndex.search`` on the "after" index, warm (one searcher, as a web worker keeps it).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search import analysis
from search.documents import CampaignText, MetricFact
from search.keyword import KeywordIndex, MetricRange, SearchFilters, fields, storage

SENTENCES = [
    "今年双十一我们在企业微信社群做了拼团和任务宝裂变，新客首单满减券核销率达到32%。",
    "沉睡用户召回短信的点击率只有1.2%，唤醒效果不及预期，下次改用App推送。",
    "高价值会员的复购率同比提升了8个百分点，但客单价下降，羊毛党薅羊毛问题严重。",
    "今年雙十一私域拉新活動的復購率提升，K值達到1.3，企微社群促活效果明顯。",
    "618 GMV 同比 +35%, ROI 1:4.2，直播带货贡献了六成成交额。",
    "宝妈群的完课率为64%，获客成本上升了22%，需要复盘投放渠道。",
    "KOC种草笔记在小红书的互动率高于KOL，跨界联名款首日售罄。",
    "Retention D30 improved after the livestream; conversion rate rose from 2.1% to 3.4%.",
    "经验：连续订购立减比限时优惠更能提升复购，建议下次在公众号和小程序同步上线。",
    "问题：多个活动同时面向价格敏感用户，优惠叠加形成超级优惠，被羊毛党利用。",
    "The A/B test showed poster A beats poster B by 20% CTR among new users.",
    "门店到店核销率偏低，导购没有收到活动培训，线下物料晚到三天。",
    "积分商城改版后兑换率提升，但积分成本超出预算15%，需要设置兑换上限。",
    "预售定金膨胀玩法拉高了首日成交，尾款支付率只有71%，需要提醒节点。",
]
WORDS = [
    "双十一", "双11", "618", "企微", "企业微信", "社群", "拼团", "裂变", "新客", "首单", "满减券",
    "核销率", "沉睡用户", "召回", "唤醒", "短信", "推送", "复购", "客单价", "羊毛党", "私域",
    "拉新", "直播", "ROI", "宝妈", "获客成本", "种草", "小红书", "KOC", "公众号", "小程序",
    "门店", "积分", "预售", "定金", "会员", "转化率", "retention", "livestream", "海报",
]  # fmt: skip
INDUSTRIES = ["电商", "生鲜", "母婴", "美妆", "在线教育", "本地生活", "内容平台", "健身"]
AUDIENCES = ["新用户", "宝妈", "沉睡用户", "高价值会员", "价格敏感用户", "学生", "白领"]
CHANNELS = ["App推送", "短信", "企业微信", "小程序", "直播", "公众号", "小红书", "抖音"]
REWARDS = ["满减券", "折扣", "红包", "积分", "赠品", "优惠券"]
GOALS = ["acquisition", "activation", "retention", "reactivation", "conversion", "gmv", "referral"]
STATUSES = ["planned", "running", "completed", "completed", "completed", "cancelled"]


def make_docs(n_docs: int, seed: int = 7) -> list[CampaignText]:
    """Return n_docs generated campaigns of about 3 KB of text each."""
    rng = random.Random(seed)

    def text(n_bytes: int) -> str:
        parts: list[str] = []
        size = 0
        while size < n_bytes:
            sentence = rng.choice(SENTENCES)
            parts.append(sentence)
            size += len(sentence.encode())
        return "".join(parts)

    docs = []
    for i in range(1, n_docs + 1):
        start = date(2021, 1, 1) + timedelta(days=rng.randrange(1400))
        roi_target = rng.choice([2.0, 3.0, 4.0])
        roi = round(rng.uniform(0.5, 6.0), 2)
        gmv = rng.uniform(100, 10_000)
        metrics = (
            MetricFact("ROI", "roi", "higher", None, roi_target, roi,
                       100 * roi / roi_target, rng.uniform(-50, 80), roi >= roi_target),
            MetricFact("GMV", "gmv", "higher", None, None, gmv, None, rng.uniform(-20, 60), None),
        )  # fmt: skip
        docs.append(
            CampaignText(
                id=i,
                version=1,
                title=f"{rng.choice(WORDS)}{rng.choice(WORDS)}活动复盘 {i}",
                industry=rng.choice(INDUSTRIES),
                department="增长部",
                business_line=None,
                goal_type=rng.choice(GOALS),
                status=rng.choice(STATUSES),
                start_date=start,
                end_date=start + timedelta(days=rng.randrange(3, 60)),
                budget_cny=None,
                audience=tuple(rng.sample(AUDIENCES, 2)),
                products=(),
                channels=tuple(rng.sample(CHANNELS, 3)),
                reward_types=tuple(rng.sample(REWARDS, 2)),
                tags=tuple(rng.sample(WORDS, 3)),
                goal=text(120),
                summary=text(900),
                went_well=text(500),
                problems=text(500),
                lessons=text(400),
                recommendations=text(300),
                hypotheses=text(200),
                metrics=metrics,
            )
        )
    return docs


def percentiles(samples_ms: list[float]) -> str:
    """Format p50 / p95 of latencies in milliseconds."""
    cuts = statistics.quantiles(samples_ms, n=20)
    return f"p50 {statistics.median(samples_ms):6.1f} ms   p95 {cuts[18]:6.1f} ms"


def timed(fn: Callable[[], object], runs: list[str]) -> list[float]:
    """Return the wall time in ms of fn for each item of runs (fn reads the item itself)."""
    samples = []
    for _ in runs:
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


class Clock:
    """Wall and CPU time of a block: this process, and child processes that ended in it."""

    def __enter__(self) -> Clock:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = time.process_time() - self._cpu
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children_s = (children.ru_utime + children.ru_stime) - (
            self._children.ru_utime + self._children.ru_stime
        )

    def line(self, label: str, n_docs: int) -> str:
        cpu = self.cpu_s + self.children_s
        return (
            f"{label:7} {self.wall_s:7.1f} s wall  {n_docs / self.wall_s:6.0f} docs/s   "
            f"CPU {self.cpu_s:6.1f} s + workers {self.children_s:5.1f} s  "
            f"{n_docs / cpu:6.0f} docs per CPU-s   (load {os.getloadavg()[0]:.1f})"
        )


def build_before(docs: list[CampaignText], root: Path) -> None:
    """Build the index as it was built before issue 17, into ``root`` (no CURRENT switch)."""
    tiered = dict(fields._NUMBER)
    fields._NUMBER.clear()  # Whoosh's default shift_step: tiered numeric terms, as before
    try:
        schema = fields.make_schema()
    finally:
        fields._NUMBER.update(tiered)
    index = storage._storage(root).create_index(schema)
    writer = index.writer(procs=1, limitmb=256)
    for doc in docs:
        writer.add_document(**fields.to_fields(doc))
    writer.commit()
    index.close()


def ranking(index: KeywordIndex, queries: list[str]) -> list[list[tuple[int, float]]]:
    """Return the top 50 (id, score) of every query."""
    none = SearchFilters()
    return [
        [(h.campaign_id, round(h.score, 9)) for h in index.search(q, filters=none, limit=50).hits]
        for q in queries
    ]


def run(n_docs: int, *, workers: int | None, before: bool) -> None:
    """Build an index of n_docs generated campaigns and print its figures."""
    docs = make_docs(n_docs)
    size_mb = sum(len(d.body_text().encode()) + len(d.title.encode()) for d in docs) / 1e6
    root = Path(tempfile.mkdtemp(prefix="keyword-bench-"))
    rng = random.Random(11)
    queries = [" ".join(rng.sample(WORDS, rng.randint(1, 3))) for _ in range(200)]
    try:
        print(f"\n== {n_docs} documents, {size_mb:.1f} MB of text")
        if before:
            old_root = root / "before"
            old_root.mkdir()
            with Clock() as clock:
                build_before(docs, old_root)
            print(clock.line("before", n_docs))
            before_figures = clock
        with KeywordIndex(root / "after") as index, Clock() as clock:
            index.rebuild(docs, workers=workers, total=len(docs))
        print(clock.line("after", n_docs))
        if before:
            print(
                f"after / before: wall {before_figures.wall_s / clock.wall_s:.2f}x, CPU "
                f"{(before_figures.cpu_s + before_figures.children_s) / (clock.cpu_s + clock.children_s):.2f}x"
            )
        disk_mb = sum(p.stat().st_size for p in (root / "after").rglob("*") if p.is_file()) / 1e6
        print(f"index {disk_mb:.0f} MB on disk (after)")
        if before:
            with KeywordIndex(root / "after") as after:
                same = _same_rankings(old_root, after, queries)
            print(f"rankings of {len(queries)} queries, top 50 with scores: {same}")
            shutil.rmtree(old_root, ignore_errors=True)
        root = root / "after"

        start = time.perf_counter()
        index = KeywordIndex(root)
        opened_ms = (time.perf_counter() - start) * 1000
        print(f"open       {opened_ms:7.1f} ms (pointer, index, searcher)")

        none = SearchFilters()
        filtered = SearchFilters(
            industry="母婴", metrics=(MetricRange("roi", "actual", 2.0, None),)
        )
        it = iter(queries * 4)

        start = time.perf_counter()
        index.search(queries[0], filters=none, limit=20, facets=True)
        first_ms = (time.perf_counter() - start) * 1000
        print(f"first query {first_ms:7.1f} ms (ids, field lengths and facet tables)")
        cases: list[tuple[str, Callable[[], object]]] = [
            ("query, top 20", lambda: index.search(next(it), filters=none, limit=20)),
            (
                "query + facets",
                lambda: index.search(next(it), filters=none, limit=20, facets=True),
            ),
            (
                "query + filter",
                lambda: index.search(next(it), filters=filtered, limit=20),
            ),
            (
                "query + filter + facets",
                lambda: index.search(next(it), filters=filtered, limit=20, facets=True),
            ),
        ]
        for label, fn in cases:
            print(f"{label:24} {percentiles(timed(fn, queries))}")
        print(
            f"{'empty query + filter':24} "
            + percentiles(timed(lambda: index.search("", filters=filtered, limit=20), queries))
        )
        print(
            f"{'matching_ids(filter)':24} "
            + percentiles(timed(lambda: index.matching_ids(filtered), queries[:50]))
        )
        hits = [h.campaign_id for h in index.search("", filters=none, limit=200).hits]
        print(
            f"{'facet_counts(200 ids)':24} "
            + percentiles(timed(lambda: index.facet_counts(hits), queries[:50]))
        )

        upserts: list[float] = []
        first_search: list[float] = []
        for doc in rng.sample(docs, 20):
            start = time.perf_counter()
            index.upsert([doc])
            upserts.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            index.search(rng.choice(WORDS), filters=none, limit=20)
            first_search.append((time.perf_counter() - start) * 1000)
        print(f"{'upsert 1 doc + commit':24} {percentiles(upserts)}")
        print(f"{'next search (reopen)':24} {percentiles(first_search)}")
        index.close()
    finally:
        shutil.rmtree(root.parent if root.name == "after" else root, ignore_errors=True)


def _same_rankings(reference: Path, after: KeywordIndex, queries: list[str]) -> str:
    """Compare the rankings of the old-style index (opened as a KeywordIndex) and the new."""
    probe = Path(tempfile.mkdtemp(prefix="keyword-bench-ref-"))
    try:
        # Point a KeywordIndex at the reference directory through its CURRENT file.
        name = f"{analysis.analyzer_fingerprint()[:16]}-1"
        (probe / name).symlink_to(reference.resolve())
        (probe / storage.POINTER).write_text(name + "\n", encoding="utf-8")
        with KeywordIndex(probe) as old:
            a, b = ranking(old, queries), ranking(after, queries)
        differing = sum(x != y for x, y in zip(a, b, strict=True))
        return "identical" if not differing else f"{differing} DIFFER"
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def main(argv: list[str]) -> None:
    """Run the benchmark for each document count given (default 1000 and 10000)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 10_000])
    parser.add_argument(
        "--workers", type=int, default=None, help="analysis processes (default: one per core, ≤ 2)"
    )
    parser.add_argument("--no-before", action="store_true", help="skip the old writer's build")
    args = parser.parse_args(argv)
    print(
        f"keyword_bench {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; {os.cpu_count()} CPUs"
    )
    analysis.warm_up()
    for n_docs in args.sizes:
        run(n_docs, workers=args.workers, before=not args.no_before)


if __name__ == "__main__":
    main(sys.argv[1:])
