"""The portfolio, signals and lessons over the 55 demo campaigns, checked against numbers this
test computes on its own from kb/demo_data/campaigns.json (not through the code under test)."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.insights import signals
from kb.insights.schemas import LessonSearchOut, PortfolioOut
from tests.insights.demo_keys import key_outcome

DEMO = json.loads(
    (Path(__file__).resolve().parents[2] / "kb" / "demo_data" / "campaigns.json").read_text(
        encoding="utf-8"
    )
)
# The demo's Traditional spellings of audience segments, folded by hand.
SIMPLIFIED = {
    "新用戶": "新用户",
    "高價值會員": "高价值会员",
    "付費會員": "付费会员",
    "沉睡會員": "沉睡会员",
    "寶媽": "宝妈",
}


def fold(segment: str) -> str:
    return SIMPLIFIED.get(segment, segment)


def in_period(
    record: dict[str, Any], start: str, end: str, goal: str | None, line: str | None
) -> bool:
    return (
        record["status"] != "cancelled"
        and record["end_date"] >= start
        and record["start_date"] <= end
        and goal in (None, record["goal_type"])
        and line in (None, record.get("business_line"))
    )


def months(start: str, end: str) -> list[str]:
    year, month = int(start[:4]), int(start[5:7])
    out = []
    while f"{year:04d}-{month:02d}" <= end[:7]:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


PERIODS = [
    ("2025-01-01", "2026-12-31", None, None),
    ("2024-01-01", "2024-12-31", None, None),
    ("2022-05-01", "2027-02-28", None, None),  # everything
    ("2023-01-01", "2025-12-31", "gmv", None),
    ("2022-05-01", "2027-02-28", None, "宝贝优选"),
    ("2024-06-01", "2024-06-30", None, None),  # one month
]


def _url(start: str, end: str, goal: str | None, line: str | None) -> str:
    url = f"/api/v1/portfolio?date_from={start}&date_to={end}"
    if goal:
        url += f"&goal_type={goal}"
    if line:
        url += f"&business_line={line}"
    return url


@pytest.mark.parametrize(("start", "end", "goal", "line"), PERIODS)
def test_portfolio_numbers_match_an_independent_count(
    demo_client: FlaskClient, start: str, end: str, goal: str | None, line: str | None
) -> None:
    body = demo_client.get(_url(start, end, goal, line)).get_json()
    PortfolioOut.model_validate(body)
    chosen = [r for r in DEMO if in_period(r, start, end, goal, line)]
    assert sorted(c["title"] for c in body["campaigns"]) == sorted(r["title"] for r in chosen)
    assert body["excluded_cancelled"] == sum(
        1
        for r in DEMO
        if r["status"] == "cancelled" and in_period({**r, "status": "x"}, start, end, goal, line)
    )

    by_goal: dict[str, list[dict[str, Any]]] = {}
    for record in chosen:
        by_goal.setdefault(record["goal_type"], []).append(record)
    summaries = {g["goal_type"]: g for g in body["goals"]}
    assert set(summaries) == set(by_goal)
    for goal_type, records in [*by_goal.items(), (None, chosen)]:
        got = summaries[goal_type] if goal_type else body["total"]
        completed = [key_outcome(r) for r in records if r["status"] == "completed"]
        judged = [(a, hit) for a, hit in completed if hit is not None]
        hits = sum(1 for _, hit in judged if hit)
        attainments = [a for a, _ in judged if a is not None]
        assert got["campaigns"] == len(records)
        assert got["budget_cny"] == pytest.approx(sum(r.get("budget_cny") or 0 for r in records))
        assert got["budget_known"] == sum(1 for r in records if r.get("budget_cny") is not None)
        assert got["judged"] == len(judged)
        assert got["hit"] == hits
        if judged:
            assert got["hit_share_pct"] == pytest.approx(hits / len(judged) * 100, abs=0.05)
        else:
            assert got["hit_share_pct"] is None
        if attainments:
            expected = statistics.median(attainments)
            assert got["median_attainment_pct"] == pytest.approx(expected, abs=0.05)
        else:
            assert got["median_attainment_pct"] is None
        # No demo campaign reports what its rewards cost: unknown, not guessed from budgets.
        assert got["reward_spend_cny"] is None
        assert got["reward_spend_known"] == 0


@pytest.mark.parametrize(("start", "end", "goal", "line"), PERIODS)
def test_crowding_and_uncovered_segments_match_an_independent_count(
    demo_client: FlaskClient, start: str, end: str, goal: str | None, line: str | None
) -> None:
    body = demo_client.get(_url(start, end, goal, line)).get_json()
    chosen = [r for r in DEMO if in_period(r, start, end, goal, line)]
    expected: Counter[tuple[str, str]] = Counter()
    for record in chosen:
        active = months(max(record["start_date"], start), min(record["end_date"], end))
        for segment in {fold(a) for a in record["audience"]}:
            for month in active:
                expected[(segment, month)] += 1
    crowding = body["crowding"]
    assert crowding["months"] == months(start, end)
    got = {
        (fold(segment), month): n
        for segment, row in zip(crowding["segments"], crowding["counts"], strict=True)
        for month, n in zip(crowding["months"], row, strict=True)
        if n
    }
    assert got == dict(expected)
    totals = [sum(row) for row in crowding["counts"]]
    assert totals == sorted(totals, reverse=True)  # busiest segment first

    universe = {
        fold(a)
        for r in DEMO
        if r["status"] != "cancelled" and line in (None, r.get("business_line"))
        for a in r["audience"]
    }
    reached = {fold(a) for r in chosen for a in r["audience"]}
    assert {fold(s) for s in body["uncovered_segments"]} == universe - reached


def test_default_period_is_last_year_and_this_year(demo_client: FlaskClient) -> None:
    from datetime import date

    body = demo_client.get("/api/v1/portfolio").get_json()
    year = date.today().year
    assert (body["date_from"], body["date_to"]) == (f"{year - 1}-01-01", f"{year}-12-31")


def _ids(demo_app: Flask, demo_ids: dict[str, int], *numbers: int) -> set[int]:
    return {demo_ids[f"demo-{n:03d}"] for n in numbers}


def test_signals_on_the_demo_campaigns(demo_app: Flask, demo_ids: dict[str, int]) -> None:
    # Worked out by hand from the demo's numbers (see the metric tables of each campaign).
    expected = {
        # 观看人次 +320 % / +280 % / +320 % against GMV +8.1 % / +12.5 % / +8.0 %
        "data_bubble": (3, 13, 16),
        # 获客成本 / CAC: +38 %, +35 %, +23.6 %, +26.1 %
        "cost_rise": (6, 19, 31, 33),
        # 退货率 up: 9.5 → 16.8, 5.2 → 13.7, 8 → 19.5, 18 → 31.2
        "risk_worse": (1, 12, 15, 16),
        # 核销率 18.3 % (completed) and 12.4 % (running)
        "low_redemption": (23, 48),
    }
    with demo_app.app_context():
        for code, numbers in expected.items():
            assert signals.campaigns_with_signals({code}) == _ids(demo_app, demo_ids, *numbers)
        found = signals.signals_by_campaign()
    (bubble,) = [s for s in found[demo_ids["demo-003"]] if s.code == "data_bubble"]
    assert bubble.explanation == (
        "观看人次较基线 +320%，而 GMV 仅 +8.1%：流量增长没有转化为成交（数据泡沫）"
    )
    low = {
        cid
        for cid, found_signals in found.items()
        for s in found_signals
        if s.code == "low_attainment"
    }
    # Only the key metric is judged, and only once the campaign is over.
    by_hand = {
        demo_ids[record["external_id"]]
        for record in DEMO
        if record["status"] == "completed"
        and (attain := key_outcome(record)[0]) is not None
        and attain < 80
    }
    assert low == by_hand
    # demo-016 missed GMV (77 %) while 观看人次 reached 210 %: warned on GMV, not cleared by views.
    (missed,) = [s for s in found[demo_ids["demo-016"]] if s.code == "low_attainment"]
    assert missed.metrics == ("GMV",)
    assert re.match(r"主要指标 GMV 达成率 77\.[23]%，低于 80% 的预警线（目标 ", missed.explanation)


def test_portfolio_signal_counts(demo_client: FlaskClient, demo_ids: dict[str, int]) -> None:
    body = demo_client.get(_url("2024-01-01", "2024-12-31", None, None)).get_json()
    titles = {c["id"]: c for c in body["campaigns"]}
    counted = Counter(code for c in body["campaigns"] for code in {s["code"] for s in c["signals"]})
    assert body["signal_counts"] == {code: counted.get(code, 0) for code in signals.signal_codes()}
    assert "data_bubble" in {s["code"] for s in titles[demo_ids["demo-003"]]["signals"]}


# --- lessons ----------------------------------------------------------------------------------


def test_every_lesson_recommendation_and_tested_hypothesis_is_an_item(
    demo_client: FlaskClient,
) -> None:
    body = demo_client.get("/api/v1/lessons?limit=200").get_json()
    LessonSearchOut.model_validate(body)
    lines = sum(
        1
        for r in DEMO
        for f in ("lessons", "recommendations")
        for x in r[f].splitlines()
        if x.strip()
    )
    tested = sum(1 for r in DEMO for h in r["hypotheses"] if h["result"] != "inconclusive")
    assert body["total"] == lines + tested
    kinds = Counter(item["kind"] for page in (0, 200) for item in demo_client.get(
        f"/api/v1/lessons?limit=200&offset={page}").get_json()["items"])  # fmt: skip
    assert kinds["hypothesis"] == tested
    assert kinds["lesson"] + kinds["recommendation"] == lines


def test_lesson_search_reads_synonyms_and_traditional_and_links_back(
    demo_client: FlaskClient, demo_ids: dict[str, int]
) -> None:
    body = demo_client.get("/api/v1/lessons?q=企业微信").get_json()
    texts = [item["text"] for item in body["items"]]
    assert "企微承接要提前按预估好友量准备账号" in texts  # 企微 = 企业微信
    assert all(re.search("企微|企业微信|企業微信", t) for t in texts)
    item = next(i for i in body["items"] if i["text"].startswith("企微承接"))
    assert item["campaign_id"] == demo_ids["demo-005"]
    assert item["kind"] == "lesson"
    assert "<mark>企微</mark>" in item["text_html"]
    assert "channel" in item["themes"]

    traditional = demo_client.get("/api/v1/lessons?q=羊毛黨").get_json()
    assert traditional["total"] >= 1
    # The items that say 羊毛党 come first; few do, so the items describing the concept (薅,
    # 刷量, 风控: search/data/concepts.txt, as the main search expands) follow them.
    saying = ["羊毛党" in i["text"] + i["evidence"] for i in traditional["items"]]
    assert saying[0]
    assert saying == sorted(saying, reverse=True)


def test_lesson_search_filters_by_theme_and_kind(demo_client: FlaskClient) -> None:
    everything = demo_client.get("/api/v1/lessons?limit=200&offset=0").get_json()
    risk = demo_client.get("/api/v1/lessons?theme=risk&limit=200").get_json()
    assert risk["total"] == everything["theme_counts"]["risk"] > 0
    assert all("risk" in i["themes"] for i in risk["items"])
    refuted = demo_client.get("/api/v1/lessons?kind=hypothesis&limit=200").get_json()
    assert {i["result"] for i in refuted["items"]} == {"validated", "refuted"}
    bad = demo_client.get("/api/v1/lessons?theme=marketing&limit=0")
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"theme", "limit"}


def test_lessons_page_groups_by_theme(demo_client: FlaskClient) -> None:
    html = demo_client.get("/lessons?q=叠加").get_data(as_text=True)
    assert '<h2 id="theme-reward">奖励设计' in html
    assert "<mark>叠加</mark>" in html
    assert "来自 <a href=" in html


def test_portfolio_page_has_a_table_for_every_chart(demo_client: FlaskClient) -> None:
    html = demo_client.get("/portfolio?date_from=2025-01-01&date_to=2025-12-31").get_data(
        as_text=True
    )
    for chart, table in (
        ("chart-goals", "table-goals"),
        ("chart-budget", "table-budget"),
        ("chart-timeline", "table-timeline"),
        ("chart-crowding", "table-crowding"),
    ):
        assert f'id="{chart}"' in html
        assert f'id="{table}"' in html
    assert '<script type="application/json" id="portfolio-data">' in html
    assert "<script>" not in html  # no inline script: the data block is JSON
    assert "vendor/chart.umd.min.js" in html
    assert "cdn" not in html.lower()
