"""Measure the keyword analyzer's throughput (MB/s of UTF-8, one core) on generated 3-KB texts.

Run: .venv/bin/python bench/analysis_bench.py [--docs 200] [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search import analysis, lexicon
from search.normalize import normalize

SENTENCES = [
    "今年双十一我们在企业微信社群做了拼团和任务宝裂变，新客首单满减券核销率达到32%。",
    "沉睡用户召回短信的点击率只有1.2%，唤醒效果不及预期，下次改用App推送。",
    "高价值会员的复购率同比提升了8个百分点，但客单价下降，羊毛党薅羊毛问题严重。",
    "今年雙十一私域拉新活動的復購率提升，K值達到1.3，企微社群促活效果明顯。",
    "618 GMV 同比 +35%, ROI 1:4.2，直播带货贡献了六成成交额。",
    "宝妈群的完课率为64%，获客成本上升了22%，需要复盘投放渠道。",
    "KOC种草笔记在小红书的互动率高于KOL，跨界联名款首日售罄。",
    "Ｔｈｅ ｃａｍｐａｉｇｎ ｒａｎ ｆｏｒ ｔｗｏ ｗｅｅｋｓ，ＤＯＵＢＬＥ　１１ coupons were stacked.",
    "Retention D30 improved after the livestream; conversion rate rose from 2.1% to 3.4%.",
    "经验：连续订购立减比限时优惠更能提升复购，建议下次在公众号和小程序同步上线。",
    "问题：多个活动同时面向价格敏感用户，优惠叠加形成超级优惠，被羊毛党利用。",
    "The A/B test showed poster A beats poster B by 20% CTR among new users.",
]


def make_corpus(n_docs: int, doc_bytes: int = 3000, seed: int = 7) -> list[str]:
    """Return n_docs texts of about doc_bytes UTF-8 bytes each, mixed as real retros are."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        parts: list[str] = []
        size = 0
        while size < doc_bytes:
            sentence = rng.choice(SENTENCES)
            parts.append(sentence)
            size += len(sentence.encode())
        docs.append("".join(parts))
    return docs


def measure(label: str, fn: Callable[[str], object], docs: list[str], runs: int) -> float:
    """Print and return the median MB/s of fn over the corpus."""
    total = sum(len(d.encode()) for d in docs)
    rates = []
    for _ in range(runs):
        # CPU time of this process: other jobs on a shared 2-core machine skew wall time.
        start = time.process_time()
        for doc in docs:
            fn(doc)
        rates.append(total / (time.process_time() - start) / 1e6)
    median = statistics.median(rates)
    print(f"{label:<42} {median:6.2f} MB/s  (min {min(rates):.2f}, max {max(rates):.2f})")
    return median


def main() -> None:
    """Run the measurements."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    docs = make_corpus(args.docs)
    start = time.perf_counter()
    analysis.warm_up()
    print(f"warm-up (tables, OpenCC, rjieba + dictionary): {time.perf_counter() - start:.2f} s")
    mb = sum(len(d.encode()) for d in docs) / 1e6
    print(f"corpus: {len(docs)} docs, {mb:.2f} MB, median of {args.runs} runs")
    lex = lexicon.current()
    whoosh_analyzer = analysis.make_analyzer()

    def index_like_whoosh(doc: str) -> None:
        for token in whoosh_analyzer(doc, positions=True, chars=True, mode="index"):
            _ = token.text

    measure(
        "rjieba search mode alone (baseline)",
        lambda d: lex.segmenter.tokenize(d, "search"),
        docs,
        args.runs,
    )
    measure("normalize (NFKC + t2s + lower)", normalize, docs, args.runs)
    if lex.phrase_pattern is not None:
        pattern = lex.phrase_pattern
        measure("phrase pattern scan", lambda d: pattern.findall(d), docs, args.runs)
    measure("analyzer, index mode (as Whoosh calls it)", index_like_whoosh, docs, args.runs)
    measure("analyze(mode='query')", lambda d: analysis.analyze(d, mode="query"), docs, args.runs)


if __name__ == "__main__":
    main()
