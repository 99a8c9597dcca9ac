"""Conditions typed in the search box: "GMV 超过 50万", "达成率低于80%的大促", "预算 100万 以上".

The grammar (kb/searching/conditions.py ``read_query``) is checked on its own, then the search on
the 55 demo campaigns against sets computed here from the demo file by hand (units converted
here, not by the code under test), then the API document and the page's chip.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from kb.campaigns import metrics as metric_catalog
from kb.demo import demo_records
from kb.parsing import parse_to_base
from kb.searching import conditions
from tests.factories import campaign_payload

# ---- the grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "codes", "words"),
    [
        # The examples, in each order the grammar reads.
        ("GMV 超过 50万", ["gmv.actual>500000"], ""),
        ("ROI ≥ 2 的直播", ["roi.actual>=2"], "直播"),
        ("达成率低于80%的大促", ["key.attain<80"], "大促"),
        ("预算 100万 以上", ["budget.actual>=1000000"], ""),
        ("50万以上的GMV", ["gmv.actual>=500000"], ""),
        ("超过50万的GMV", ["gmv.actual>500000"], ""),
        ("预算在100万以上的拉新活动", ["budget.actual>=1000000"], "拉新活动"),
        # Field words, aliases, ratios, several conditions, words around them.
        ("GMV 的达成率不到 80%", ["gmv.attain<80"], ""),
        ("成交额目标值 不低于 1.2亿元", ["gmv.target>=120000000"], ""),
        ("转化率 较基线 ≤ -3.5%", ["conversion_rate.lift<=-3.5"], ""),
        ("主要指标 达成率 ≥ 100%", ["key.attain>=100"], ""),
        ("ROI为1:4.2", ["roi.actual=4.2"], ""),
        ("GMV 达到 1亿", ["gmv.actual>=100000000"], ""),
        # A comparison word on both sides of the number: one condition, no word left over.
        ("GMV 达到 1000万以上", ["gmv.actual>=10000000"], ""),
        ("GMV 达到 1000万以上的直播活动", ["gmv.actual>=10000000"], "直播活动"),
        ("达到50万以上的GMV", ["gmv.actual>=500000"], ""),
        ("预算为 100万以上", ["budget.actual>=1000000"], ""),  # 为 … 以上: at least
        ("ROI 不超过 3 以下", ["roi.actual<=3"], ""),
        (
            "双11 GMV 超过 1亿 且 ROI ≥ 2 的直播",
            ["gmv.actual>100000000", "roi.actual>=2"],
            "双11 直播",
        ),
        ("新增 超过 3万人", ["new_users.actual>30000"], ""),
        # Traditional and full-width forms read like their simplified half-width ones.
        ("預算 100萬 以上", ["budget.actual>=1000000"], ""),
        ("完課率 不低於 60%", ["completion_rate.actual>=60"], ""),
        ("ＧＭＶ ＞ ５０万", ["gmv.actual>500000"], ""),
        # English: the table's words, numbers with k / w / 万 (no "million": not a unit here).
        ("GMV over 500k", ["gmv.actual>500000"], ""),
        ("campaigns with ROI at least 2", ["roi.actual>=2"], ""),  # "campaigns" names all
        ("券核销率超过 40% 的活动", ["redemption_rate.actual>40"], ""),
        ("ROI at least 2 in livestream", ["roi.actual>=2"], "in livestream"),
        ("CAC below 50", ["cac.actual<50"], ""),
        # Not conditions: stay words, no error.
        ("ROI 提升 2 倍的玩法", [], "ROI 提升 2 倍的玩法"),  # no comparison word
        ("GMV 同比超过 30%", [], "GMV 同比超过 30%"),  # 同比 is no field: ambiguous
        # Percentage points are a difference, not the relative lift the index holds.
        ("复购率提升超过 10 个百分点的活动", [], "复购率提升超过 10 个百分点的活动"),
        ("GMV 超过 50%", [], "GMV 超过 50%"),  # a percentage of a money amount
        ("转化率 超过 50元", [], "转化率 超过 50元"),  # money on a rate
        ("GMV 超过 2024 年", [], "GMV 超过 2024 年"),  # a year, not an amount
        ("budget over 1m", [], "budget over 1m"),  # "m" is no unit the reader knows
        ("ROI 低于预期的直播活动", [], "ROI 低于预期的直播活动"),  # an outcome, not a number
        ("主要指标 超过 5", [], "主要指标 超过 5"),  # the key metric compares by attainment only
        ("top10 超过 5", [], "top10 超过 5"),  # no metric named
        # A unit that does not measure the metric: words, with the reason (next test).
        ("GMV 超过 50万单", [], "GMV 超过 50万单"),  # 单 counts orders, GMV is money
        ("超过50万单的GMV", [], "超过50万单的GMV"),
        ("GMV 超过 2倍", [], "GMV 超过 2倍"),  # a ratio is no amount (it read as GMV > 2 元)
        ("订单量 超过 5万元", [], "订单量 超过 5万元"),  # orders are counted, not money
        ("ROI 超过 50万", [], "ROI 超过 50万"),  # a ratio is never 万 times
        ("转化率 高于 3万", [], "转化率 高于 3万"),  # nor a rate
        ("NPS 高于 3万", [], "NPS 高于 3万"),
        ("新增 超过 3万元", [], "新增 超过 3万元"),
        # The units that do measure them.
        ("订单量 超过 5万单", ["orders.actual>50000"], ""),
        ("UV 超过 1万", ["uv.actual>10000"], ""),
        ("人均服务次数 超过 2次", ["usage_frequency.actual>2"], ""),
        ("ROI ≥ 2倍", ["roi.actual>=2"], ""),
    ],
)
def test_the_grammar_reads_conditions_and_leaves_words(
    typed: str, codes: list[str], words: str
) -> None:
    read = conditions.read_query(typed)
    assert [found.condition.code for found in read.conditions] == codes
    assert read.words == words
    for found in read.conditions:
        assert found.text in typed  # the fragment as typed, for the chip's ×
        assert conditions.parse(found.condition.code) == found.condition  # the form's filter


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("GMV 超过 50万单", "GMV 按金额（如 50万、1.2亿元、8000元）比较，“单”是数量单位"),
        ("订单量 超过 5万元", "订单量 按数量（如 3万、5000人、2万单）比较，“元”是金额单位"),
        ("ROI 超过 50万", "ROI 按倍数（如 2、1:3.5、2倍）比较，不带万、亿"),
        ("转化率 高于 3万", "转化率 按百分比（如 3%、80%）比较，不带万、亿"),
        ("转化率 超过 50元", "转化率 按百分比（如 3%、80%）比较，“元”是金额单位"),
        ("预算 超过 5万人", "预算 按金额（如 50万、1.2亿元、8000元）比较，“人”是数量单位"),
    ],
)
def test_a_unit_that_does_not_fit_says_why_it_filters_nothing(typed: str, reason: str) -> None:
    read = conditions.read_query(f"{typed} 的直播")
    assert read.conditions == ()
    assert read.words == f"{typed} 的直播"
    assert [u.text for u in read.unread] == [typed]
    assert read.unread[0].reason == f"“{typed}”没有当作条件，已按文字搜索：{reason}。"


def test_only_a_unit_mistake_is_named() -> None:
    # Read, or not a unit mistake (percentage points, a field 主要指标 has not): nothing to explain.
    for typed in (
        "GMV 超过 50万",
        "复购率提升超过 10 个百分点的活动",
        "主要指标 超过 5",
        "ROI 提升 2 倍",
    ):
        assert conditions.read_query(typed).unread == (), typed
    # A fragment the page's × asked to keep as words is not explained again.
    assert conditions.read_query("GMV 超过 50万单", as_text=["GMV 超过 50万单"]).unread == ()


def test_a_fragment_asked_as_text_stays_words() -> None:
    typed = "GMV 超过 50万 且 ROI ≥ 2 的直播"
    read = conditions.read_query(typed, as_text=["GMV 超过 50万"])
    assert [found.condition.code for found in read.conditions] == ["roi.actual>=2"]
    assert read.words == "GMV 超过 50万 直播"


def test_every_catalog_name_and_every_comparison_word_is_read() -> None:
    # The grammar is the catalog and the table, not a list of phrasings: check all of them.
    for entry in metric_catalog.CATALOG:
        for name in (*entry.aliases, entry.label):
            read = conditions.read_query(f"{name} 超过 5")
            assert [c.condition.key for c in read.conditions] == [entry.key], name
    for word, op, place in conditions.COMPARISON_WORDS:
        typed = f"ROI {word} 2" if place == "before" else f"ROI 2 {word}"
        read = conditions.read_query(typed)
        assert [c.condition.code for c in read.conditions] == [f"roi.actual{op}2"], word


def test_a_budget_condition_reads_in_the_form_too() -> None:
    condition = conditions.parse("预算 ≥ 100万")
    assert condition.code == "budget.actual>=1000000"
    assert condition.label == "预算 ≥ 100万"
    with pytest.raises(conditions.ConditionError, match="预算只能按金额筛选"):
        conditions.build("budget", "attain", ">=", "80")


# ---- the search, on the demo data ------------------------------------------------------------


def _search(demo: tuple[FlaskClient, dict[int, str]], **params: Any) -> dict[str, Any]:
    client, _ = demo
    response = client.get("/api/v1/search", query_string={"limit": 100, **params})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _keys(demo: tuple[FlaskClient, dict[int, str]], body: dict[str, Any]) -> list[str]:
    return [demo[1][result["id"]] for result in body["results"]]


_TO_YUAN = {"万元": 1e4, "元": 1.0}


def _demo_gmv() -> dict[str, float]:
    """Each demo campaign's first GMV actual in 元, units converted here by hand."""
    found = {}
    for record in demo_records():
        for metric in record["metrics"]:
            entry = metric_catalog.lookup(metric["name"])  # GMV, 交易总额, 成交額…
            if entry is not None and entry.key == "gmv" and metric.get("actual") is not None:
                found.setdefault(record["external_id"], metric["actual"] * _TO_YUAN[metric["unit"]])
    return found


def test_a_query_that_is_only_a_condition_lists_what_meets_it_by_value(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    gmv = _demo_gmv()
    expected = {key for key, value in gmv.items() if value > 1e7}
    assert expected
    assert expected != set(gmv)
    body = _search(demo, q="GMV 超过 1000万")
    listed = _keys(demo, body)
    assert set(listed) == expected
    assert body["total"] == len(expected)
    assert [gmv[key] for key in listed] == sorted((gmv[key] for key in listed), reverse=True)
    assert body["recognised_conditions"] == [
        {"code": "gmv.actual>10000000", "label": "GMV 实际值 ＞ 1000万", "text": "GMV 超过 1000万"}
    ]
    # The same condition written the other way round, and the form's filter, find the same.
    assert set(_keys(demo, _search(demo, q="1000万以上的GMV"))) == {
        key for key, value in gmv.items() if value >= 1e7
    }


def test_a_budget_condition_filters_and_ranks_by_budget(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    budgets = {r["external_id"]: r["budget_cny"] for r in demo_records() if r.get("budget_cny")}
    expected = {key for key, value in budgets.items() if value >= 3e6}
    assert expected
    assert expected != set(budgets)
    body = _search(demo, q="預算 300萬 以上")  # Traditional
    listed = _keys(demo, body)
    assert set(listed) == expected
    assert [budgets[key] for key in listed] == sorted((budgets[k] for k in listed), reverse=True)
    below = _keys(demo, _search(demo, q="预算低于60万"))
    assert set(below) == {key for key, value in budgets.items() if value < 6e5}
    assert [budgets[key] for key in below] == sorted(budgets[key] for key in below)  # lowest first


def test_query_and_form_conditions_combine(demo: tuple[FlaskClient, dict[int, str]]) -> None:
    gmv = _demo_gmv()
    records = {r["external_id"]: r for r in demo_records()}
    industry = records[max(gmv, key=gmv.__getitem__)]["industry"]
    expected = {k for k, v in gmv.items() if v > 1e7 and records[k]["industry"] == industry}
    body = _search(demo, q="GMV 超过 1000万", industry=industry, metric_range="ROI ≥ 0")
    roi = {
        r["external_id"]
        for r in demo_records()
        if any(m["name"] == "ROI" and m.get("actual") is not None for m in r["metrics"])
    }
    assert expected & roi  # the three conditions together still select something
    assert set(_keys(demo, body)) == expected & roi


def test_the_key_metric_attainment_is_the_forms_filter(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    typed = _search(demo, q="达成率低于80%")
    form = _search(demo, metric_range="key.attain<80")
    assert set(_keys(demo, typed)) == set(_keys(demo, form))
    assert typed["total"] == form["total"] > 0


def test_the_words_left_are_searched_under_the_condition(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    typed = _search(demo, q="ROI ≥ 2 的直播", mode="keyword")
    form = _search(demo, q="直播", metric_range="roi.actual>=2", mode="keyword")
    assert _keys(demo, typed) == _keys(demo, form)
    assert typed["total"] > 0
    assert [c["code"] for c in typed["recognised_conditions"]] == ["roi.actual>=2"]


def test_a_condition_asked_as_text_is_searched_as_words(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    body = _search(demo, q="GMV 超过 1000万", as_text="GMV 超过 1000万", mode="keyword")
    assert body["recognised_conditions"] == []
    # As words, every campaign naming GMV matches: more than the condition selects.
    assert body["total"] > len({k for k, v in _demo_gmv().items() if v > 1e7})
    not_a_condition = _search(demo, q="ROI 提升 2 倍的玩法", mode="keyword")
    assert not_a_condition["recognised_conditions"] == []


def test_the_api_document_names_the_new_fields(demo: tuple[FlaskClient, dict[int, str]]) -> None:
    client, _ = demo
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/search"]["get"]
    assert "as_text" in {parameter["name"] for parameter in operation["parameters"]}
    schemas = document["components"]["schemas"]
    assert "recognised_conditions" in schemas["SearchResponseOut"]["required"]
    assert set(schemas["RecognisedConditionOut"]["properties"]) == {"code", "label", "text"}


def test_a_unit_mistake_is_explained_on_the_page_and_in_the_api(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    client, _ = demo
    reason = (
        "“GMV 超过 50万单”没有当作条件，已按文字搜索：GMV 按金额（如 50万、1.2亿元、8000元）比较"
    )
    body = _search(demo, q="GMV 超过 50万单 的直播", mode="keyword")
    assert body["recognised_conditions"] == []
    assert [u["text"] for u in body["unread_conditions"]] == ["GMV 超过 50万单"]
    assert body["unread_conditions"][0]["reason"].startswith(reason)
    page = client.get("/search", query_string={"q": "GMV 超过 50万单 的直播"}).get_data(
        as_text=True
    )
    assert 'class="flash flash-info unread-condition" role="status">' + reason in page
    read = client.get("/search", query_string={"q": "GMV 超过 50万 的直播"}).get_data(as_text=True)
    assert "unread-condition" not in read
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert set(schemas["UnreadConditionOut"]["properties"]) == {"text", "reason"}


def test_the_page_shows_the_condition_as_a_chip_whose_x_searches_the_words(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    client, _ = demo
    page = client.get("/search", query_string={"q": "GMV 超过 1000万"}).get_data(as_text=True)
    assert "已识别条件：GMV 实际值 ＞ 1000万" in page
    start = page.index("已识别条件：GMV 实际值 ＞ 1000万")
    href = page[start:].split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    params = parse_qs(urlsplit(href).query)
    assert params == {"q": ["GMV 超过 1000万"], "as_text": ["GMV 超过 1000万"]}
    again = client.get(href).get_data(as_text=True)
    assert "已识别条件" not in again
    assert 'name="as_text" value="GMV 超过 1000万"' in again  # kept when the form is sent again


def _met_chips(page: str) -> list[tuple[int, str]]:
    """Return each result card's campaign id and the "met" chip it shows (one per card here)."""
    found = []
    for card in page.split('<article class="card result')[1:]:
        campaign_id = int(card.split('href="/campaigns/', 1)[1].split('"', 1)[0])
        chips = re.findall(r'<span class="chip met-condition">([^<]*)</span>', card)
        assert len(chips) == 1, card[:400]
        found.append((campaign_id, chips[0]))
    return found


def _assert_money_read_back(
    shown: list[tuple[int, str]],
    name: str,
    threshold: str,
    expected: dict[str, float],
    keys: dict[int, str],
) -> None:
    """Each chip "<name> <amount> <threshold>" reads back to the campaign's amount in 元."""
    for campaign_id, chip in shown:
        match = re.fullmatch(
            rf"{re.escape(name)} (\S+) ?(亿元|万元|元) {re.escape(threshold)}", chip
        )
        assert match is not None, chip
        number, unit = match.groups()
        # As the campaign page writes it: to three figures (1.392 亿元 → 1.39 亿元).
        assert parse_to_base(number.replace(",", "") + unit) == pytest.approx(
            expected[keys[campaign_id]], rel=0.005
        ), chip


def test_a_result_card_shows_the_value_that_met_the_condition(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    client, keys = demo
    gmv = _demo_gmv()
    page = client.get("/search", query_string={"q": "GMV 超过 1000万"}).get_data(as_text=True)
    shown = _met_chips(page)
    assert {keys[campaign_id] for campaign_id, _ in shown} == {
        key for key, value in gmv.items() if value > 1e7
    }
    # "GMV 实际值 1.39 亿元 ＞ 1000万": the campaign's GMV, read back, is the demo file's.
    _assert_money_read_back(shown, "GMV 实际值", "＞ 1000万", gmv, keys)
    budgets = {r["external_id"]: r["budget_cny"] for r in demo_records() if r.get("budget_cny")}
    page = client.get("/search", query_string={"q": "预算 300万 以上"}).get_data(as_text=True)
    shown = _met_chips(page)
    assert shown
    _assert_money_read_back(shown, "预算", "≥ 300万", budgets, keys)
    # A search without a condition shows no such chip.
    plain = client.get("/search", query_string={"q": "直播"}).get_data(as_text=True)
    assert "met-condition" not in plain


def test_the_key_metric_attainment_met_is_named_with_its_metric(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    client, _ = demo
    page = client.get("/search", query_string={"q": "达成率低于80%"}).get_data(as_text=True)
    shown = _met_chips(page)
    assert shown
    for _, chip in shown:
        match = re.fullmatch(r"主要指标 (.+) 达成率 ([\d.]+)% ＜ 80%", chip)
        assert match is not None, chip
        assert float(match[2]) < 80, chip


def test_budget_conditions_on_each_database(client: FlaskClient) -> None:
    # The budget is read from the database (the index holds none): SQLite and PostgreSQL alike.
    made = {}
    for key, budget in (("b-small", 300_000.0), ("b-mid", 1_000_000.0), ("b-big", 2_500_000.0)):
        body = campaign_payload(external_id=key, title=f"预算测试 {key}", budget_cny=budget)
        response = client.post("/api/v1/campaigns", json=body)
        assert response.status_code == 201, response.get_json()
        made[response.get_json()["id"]] = key

    def listed(q: str) -> list[str]:
        response = client.get("/api/v1/search", query_string={"q": q, "limit": 100})
        assert response.status_code == 200, response.get_json()
        return [made[result["id"]] for result in response.get_json()["results"]]

    assert listed("预算 100万 以上") == ["b-big", "b-mid"]
    assert listed("预算超过100万") == ["b-big"]
    assert listed("budget at most 1000000") == ["b-small", "b-mid"]
    assert listed("预算为100万") == ["b-mid"]


def test_a_typed_condition_keeps_what_it_selects_when_the_words_are_too_vague(
    demo: tuple[FlaskClient, dict[int, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from search import relevance

    # The floor judges the words out of scope, as it did "大活动最后效果怎么样" with real models.
    monkeypatch.setattr(
        relevance, "decide", lambda judgement, *_: replace(judgement, in_scope=False)
    )
    vague = _search(demo, q="预算大活动最后效果怎么样", mode="hybrid")
    assert vague["weak_total"] > 0  # the floor is in force on these words alone
    budgets = {r["external_id"]: r["budget_cny"] for r in demo_records() if r.get("budget_cny")}
    body = _search(demo, q="预算 300万 以上的大活动最后效果怎么样", mode="hybrid")
    assert set(_keys(demo, body)) == {key for key, value in budgets.items() if value >= 3e6}
    assert body["total"] == len(body["results"])
    assert body["weak_total"] == 0
