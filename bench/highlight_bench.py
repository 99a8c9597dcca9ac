"""Measure search-result highlighting with and without its pre-filter, on the demo corpus.

Run: .venv/bin/python bench/highlight_bench.py [--runs 5]

Queries: every query of bench/data/search_*.json, analyzed as search does. Two workloads:
"every field" highlights each text field of the 55 demo campaigns and their documents for each
query; "result pages" does what a keyword search does for its results (up to 20 campaigns whose
indexed text holds a query term): highlight the title, then the snippet fields in order, then
the documents, until one has a mark. Each for all queries, then for keyword-like queries and for
sentences in plain words ("meaning" queries: many common one-character terms). "old" is the full
segmentation (``_highlight_reference``), "new" is ``highlight``; both must return the same
snippets, which is checked first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.demo import demo_records  # noqa: E402  # after the sys.path line above
from kb.searching.explain import SNIPPET_FIELDS  # noqa: E402
from search import analysis  # noqa: E402

PAGE_SIZE = 20  # the search API's default limit
Highlighter = Callable[[str, Iterable[str], int], str]
# (title, snippet texts in the order search tries them) per campaign
Campaign = tuple[str, list[str]]


def load_campaigns() -> list[Campaign]:
    """Return the demo campaigns' titles and snippet texts, documents last."""
    campaigns = []
    for record in demo_records():
        texts = [record.get(name) or "" for name in SNIPPET_FIELDS]
        texts += [document["body"] for document in record.get("documents", [])]
        campaigns.append((record["title"], texts))
    return campaigns


def load_queries() -> dict[str, list[list[str]]]:
    """Return the analyzed terms of every benchmark query, by kind: keyword-like or meaning."""
    queries: dict[str, list[list[str]]] = {"keyword": [], "meaning": []}
    for path in sorted((ROOT / "bench" / "data").glob("search_*.json")):
        for entry in json.loads(path.read_text(encoding="utf-8"))["queries"]:
            # Sentences in plain words ("meaning") analyze to many common one-character terms.
            kind = "meaning" if "meaning" in entry["type"] else "keyword"
            queries[kind].append(analysis.analyze(entry["query"], mode="query"))
    return queries


def every_field(highlight: Highlighter, campaigns: list[Campaign], queries: list[list[str]]) -> int:
    """Highlight every text of every campaign for every query; return the number of calls."""
    calls = 0
    for terms in queries:
        for title, texts in campaigns:
            highlight(title, terms, len(title) + 1)
            for text in texts:
                if text:
                    highlight(text, terms, 160)
            calls += 1 + sum(1 for text in texts if text)
    return calls


def result_pages(
    highlight: Highlighter, pages: list[tuple[list[str], list[Campaign]]]
) -> list[tuple[str, str]]:
    """Highlight each result's title and its first field with a mark, as search does."""
    shown = []
    for terms, results in pages:
        for title, texts in results:
            snippet = ""
            for text in texts:
                html = highlight(text, terms, 160) if text else ""
                if "<mark>" in html:
                    snippet = html
                    break
            shown.append((highlight(title, terms, len(title) + 1), snippet))
    return shown


def build_pages(queries: list[list[str]]) -> list[tuple[list[str], list[Campaign]]]:
    """Return, per query, a keyword search's results: campaigns whose indexed text has a term.

    Every string of a record counts (tags, channels, metrics, hypotheses... too), so some
    results have no mark in any highlighted field, as in the real search. Most terms first.
    """
    campaigns = load_campaigns()
    record_terms = [
        {term for text in strings(record) for term in analysis.analyze(text)}
        for record in demo_records()
    ]
    pages = []
    for terms in queries:
        scored = [
            (len(record_terms[i] & set(terms)), i)
            for i in range(len(campaigns))
            if record_terms[i] & set(terms)
        ]
        top = sorted(scored, key=lambda hit: (-hit[0], hit[1]))[:PAGE_SIZE]
        pages.append((terms, [campaigns[i] for _, i in top]))
    return pages


def strings(value: object) -> Iterator[str]:
    """Yield every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def measure(fn: Callable[[], object], runs: int) -> float:
    """Return the median CPU seconds of fn (other jobs on a shared machine skew wall time)."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    """Check that both paths agree, then time them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    analysis.warm_up()
    campaigns, by_kind = load_campaigns(), load_queries()
    old, new = analysis._highlight_reference, analysis.highlight
    groups = {"all": [q for queries in by_kind.values() for q in queries], **by_kind}
    sizes = ", ".join(f"{len(queries)} {kind}" for kind, queries in by_kind.items())
    print(f"{len(groups['all'])} queries ({sizes}) × {len(campaigns)} campaigns")
    print(f"median CPU time of {args.runs} runs; old = full segmentation, new = pre-filtered")
    print(f"{'workload':<40} {'old ms':>9} {'new ms':>9} {'old/new':>8}")
    for kind, queries in groups.items():
        pages = build_pages(queries)
        assert result_pages(old, pages) == result_pages(new, pages), "output changed"
        calls = every_field(new, campaigns, queries)
        results = sum(len(hits) for _, hits in pages)
        workloads: list[tuple[str, Callable[[Highlighter], object]]] = [
            (
                f"{kind}: every field ({calls:,} calls)",
                partial(every_field, campaigns=campaigns, queries=queries),
            ),
            (f"{kind}: result pages ({results:,} results)", partial(result_pages, pages=pages)),
        ]
        for label, run in workloads:
            old_s = measure(partial(run, old), args.runs)
            new_s = measure(partial(run, new), args.runs)
            print(f"{label:<40} {old_s * 1e3:9.1f} {new_s * 1e3:9.1f} {old_s / new_s:7.2f}×")


if __name__ == "__main__":
    main()
