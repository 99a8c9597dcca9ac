"""Superlatives typed in the search box: "ROI 最高的直播" orders the results by the value.

The words decide which campaigns are in scope, the superlative keeps the ones that have the
value and orders them by it: finished campaigns first (a running campaign's number so far is no
result), then the running ones, each by the value.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from kb.campaigns import metrics as metric_catalog
from kb.demo import demo_records
from kb.searching import conditions

Demo = tuple[FlaskClient, dict[int, str]]

# ---- the grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "codes", "words"),
    [
        ("ROI 最高的直播", ["roi.actual:desc"], "直播"),
        ("获客成本最低的拉新活动", ["cac.actual:asc"], "拉新活动"),
        ("最高的 GMV", ["gmv.actual:desc"], ""),
        ("lowest CAC acquisition campaigns", ["cac.actual:asc"], "acquisition campaigns"),
        ("which live stream had the best ROI", ["roi.actual:desc"], "which live stream had the"),
        # Best and worst go by the metric's direction: a cost is best when lowest.
        ("CAC 最好的活动", ["cac.actual:asc"], ""),
        ("获客成本最差的", ["cac.actual:desc"], ""),
        ("退货率最低", ["return_rate.actual:asc"], ""),
        # A field word picks the value: attainment of the key metric, lift over baseline.
        ("达成率最高的大促", ["key.attain:desc"], "大促"),
        ("复购率提升最多的活动", ["repurchase_rate.lift:desc"], ""),
        ("预算最高的活动", ["budget.actual:desc"], ""),
        # Traditional and full-width forms read as their simplified half-width ones.
        ("投入產出比最高的直播", ["roi.actual:desc"], "直播"),
        # Not superlatives: a number follows ("up to"), or the key metrics' units differ.
        ("GMV 最高达 1亿的大促", [], "GMV 最高达 1亿的大促"),
        ("主要指标最高", [], "主要指标最高"),
        # With a threshold, both are read.
        ("GMV 超过 1000万 ROI 最高", ["gmv.actual>10000000", "roi.actual:desc"], ""),
    ],
)
def test_the_grammar_reads_superlatives_as_orders(typed: str, codes: list[str], words: str) -> None:
    found = conditions.read_query(typed)
    assert [t.condition.code for t in found.conditions] == codes
    assert found.words == words


def test_an_order_says_which_way_in_chinese() -> None:
    (roi,) = conditions.read_query("ROI 最高").conditions
    (cac,) = conditions.read_query("获客成本最低").conditions
    (budget,) = conditions.read_query("预算最高").conditions
    assert roi.condition.label == "按 ROI 实际值从高到低"
    assert cac.condition.label == "按获客成本 实际值从低到高"
    assert budget.condition.label == "按预算从高到低"


# ---- the search, on the demo data ------------------------------------------------------------


def _search(demo: Demo, **params: Any) -> dict[str, Any]:
    client, _ = demo
    response = client.get("/api/v1/search", query_string={"limit": 100, **params})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _keys(demo: Demo, body: dict[str, Any]) -> list[str]:
    return [demo[1][result["id"]] for result in body["results"]]


def _demo_values(key: str) -> dict[str, tuple[str, float]]:
    """Each demo campaign's status and first actual value of a catalog metric (元 or 倍 here)."""
    found: dict[str, tuple[str, float]] = {}
    for record in demo_records():
        for metric in record["metrics"]:
            entry = metric_catalog.lookup(metric["name"])
            if entry is not None and entry.key == key and metric.get("actual") is not None:
                assert metric["unit"] in ("元", "倍")  # no scale to convert in these two
                found.setdefault(record["external_id"], (record["status"], metric["actual"]))
    return found


def _expected_order(values: dict[str, tuple[str, float]], keys: list[str], sign: float) -> list:
    """Finished campaigns first, then the others, each by the value in the asked direction."""
    return sorted((values[k][0] != "completed", sign * values[k][1]) for k in keys)


def test_a_superlative_alone_lists_every_campaign_with_the_value_finished_ones_first(
    demo: Demo,
) -> None:
    roi = _demo_values("roi")
    assert {status for status, _ in roi.values()} > {"completed"}  # a running one too
    body = _search(demo, q="ROI 最高")
    listed = _keys(demo, body)
    assert set(listed) == set(roi)
    assert body["total"] == len(roi)
    shown = [(roi[k][0] != "completed", -roi[k][1]) for k in listed]
    assert shown == _expected_order(roi, listed, -1.0)
    assert body["recognised_conditions"] == [
        {"code": "roi.actual:desc", "label": "按 ROI 实际值从高到低", "text": "ROI 最高"}
    ]
    # Paging the listing continues the same order.
    second = _keys(demo, _search(demo, q="ROI 最高", limit=3, offset=3))
    assert second == listed[3:6]


def test_a_cost_is_best_when_lowest(demo: Demo) -> None:
    cac = _demo_values("cac")
    listed = _keys(demo, _search(demo, q="CAC 最好的活动"))
    assert set(listed) == set(cac)
    assert [cac[k][1] for k in listed] == sorted(cac[k][1] for k in listed)


def test_the_words_decide_the_scope_and_the_value_the_order(demo: Demo) -> None:
    roi = _demo_values("roi")
    words = _keys(demo, _search(demo, q="直播", mode="keyword"))
    body = _search(demo, q="ROI 最高的直播", mode="keyword")
    listed = _keys(demo, body)
    assert set(listed) == set(words)  # nothing dropped: a campaign may write of ROI, not record it
    with_value = [k for k in listed if k in roi]
    assert 1 < len(with_value) < len(listed)
    assert listed[: len(with_value)] == with_value  # the ones with a ROI lead
    shown = [(roi[k][0] != "completed", -roi[k][1]) for k in with_value]
    assert shown == _expected_order(roi, with_value, -1.0)
    # The rest keep the words' order.
    rest = listed[len(with_value) :]
    assert rest == [k for k in words if k not in roi]


def test_a_budget_order_ranks_every_campaign_alike(demo: Demo) -> None:
    budgets = {r["external_id"]: r["budget_cny"] for r in demo_records() if r.get("budget_cny")}
    listed = _keys(demo, _search(demo, q="预算最低的活动"))
    assert set(listed) == set(budgets)
    assert [budgets[k] for k in listed] == sorted(budgets[k] for k in listed)


def test_the_page_names_the_order_and_each_cards_value(demo: Demo) -> None:
    client, _ = demo
    page = client.get("/search", query_string={"q": "ROI 最高的直播", "mode": "keyword"})
    html = page.get_data(as_text=True)
    assert "已识别条件：按 ROI 实际值从高到低" in html
    values = re.findall(r'met-condition">ROI 实际值 ([\d.]+) 倍<', html)
    assert values
    finished = [
        v
        for v in values
        if float(v) in {v for s, v in _demo_values("roi").values() if s == "completed"}
    ]
    assert [float(v) for v in finished] == sorted((float(v) for v in finished), reverse=True)
