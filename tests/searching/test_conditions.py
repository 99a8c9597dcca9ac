"""Metric conditions: read as the URL writes them or as a person does, and compared exactly."""

from __future__ import annotations

import math
from typing import Any

import pytest
from flask.testing import FlaskClient

from kb.searching import conditions
from tests.factories import campaign_payload


@pytest.mark.parametrize(
    ("typed", "code", "label"),
    [
        ("roi.actual>=2", "roi.actual>=2", "ROI 实际值 ≥ 2"),
        ("key.attain<80", "key.attain<80", "主要指标 达成率 ＜ 80%"),
        ("ROI ≥ 2", "roi.actual>=2", "ROI 实际值 ≥ 2"),
        ("ROI>2", "roi.actual>2", "ROI 实际值 ＞ 2"),
        ("GMV 达成率 < 80%", "gmv.attain<80", "GMV 达成率 ＜ 80%"),
        ("成交额 不低于 50万", "gmv.actual>=500000", "GMV 实际值 ≥ 50万"),
        ("主要指标 达成率 ≥ 100%", "key.attain>=100", "主要指标 达成率 ≥ 100%"),
        ("转化率 较基线 <= -3.5%", "conversion_rate.lift<=-3.5", "转化率 较基线 ≤ -3.5%"),
        ("roi.actual=2", "roi.actual=2", "ROI 实际值 = 2"),
    ],
)
def test_conditions_read_both_ways(typed: str, code: str, label: str) -> None:
    condition = conditions.parse(typed)
    assert condition.code == code
    assert condition.label == label
    assert conditions.parse(condition.code) == condition  # the URL form reads back the same


@pytest.mark.parametrize(
    ("typed", "box", "words"),
    [
        ("abc", "mf_value", "看不懂"),
        ("颜值分 ≥ 2", "mf_metric", "指标目录里没有“颜值分”"),
        ("ROI ≥ 很多", "mf_value", "不是数字"),
        ("主要指标 ≥ 2", "mf_field", "只能按达成率"),
        ("nosuch.actual>=2", "mf_metric", "指标目录里没有"),
    ],
)
def test_unreadable_conditions_say_why_in_chinese(typed: str, box: str, words: str) -> None:
    with pytest.raises(conditions.ConditionError) as caught:
        conditions.parse(typed)
    assert caught.value.box == box
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("op", "matches"),
    [(">=", [2.0, 3.0]), (">", [3.0]), ("<=", [1.5, 2.0]), ("<", [1.5]), ("=", [2.0])],
)
def test_each_comparison_means_what_it_says(op: str, matches: list[float]) -> None:
    found = conditions.build("roi", "actual", op, "2").to_range()
    inside = [
        value
        for value in (1.5, 2.0, 3.0)
        if (found.low is None or value >= found.low) and (found.high is None or value < found.high)
    ]
    assert inside == matches
    assert all(math.isfinite(b) for b in (found.low, found.high) if b is not None)


def _create(client: FlaskClient, roi: float, external_id: str) -> int:
    metrics = [{"name": "ROI", "unit": "倍", "baseline": 1.0, "target": 2.0, "actual": roi}]
    body = campaign_payload(external_id=external_id, title=f"直播 ROI {roi}", metrics=metrics)
    response = client.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201
    campaign_id: int = response.get_json()["id"]
    return campaign_id


def _ids(client: FlaskClient, **params: Any) -> set[int]:
    response = client.get("/api/v1/search", query_string={"q": "", **params})
    assert response.status_code == 200, response.get_json()
    return {result["id"] for result in response.get_json()["results"]}


def test_the_api_takes_either_form_and_compares_exactly(client: FlaskClient) -> None:
    low, exact, high = (_create(client, roi, f"roi-{roi}") for roi in (1.5, 2.0, 3.0))
    assert _ids(client, metric_range="roi.actual>=2") == {exact, high}
    assert _ids(client, metric_range="ROI ≥ 2") == {exact, high}
    assert _ids(client, metric_range="ROI > 2") == {high}  # the old code read > as ≥
    assert _ids(client, metric_range="roi.actual<=2") == {low, exact}  # and <= as <
    assert _ids(client, metric_range="ROI = 2") == {exact}
    response = client.get("/api/v1/search", query_string={"metric_range": "ROI ≥ 很多"})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {
        "metric_range.0": "“很多”不是数字：请填写如 2、50万、1.2亿元 或 80%（金额按元、人数按人比较）"
    }


def test_the_page_keeps_good_conditions_and_shows_the_bad_one_again(client: FlaskClient) -> None:
    page = client.get(
        "/search?q=召回&metric_range=&metric_range=ROI+≥+2&metric_range=ROI+≥+很多&audience="
        + "宝" * 101
    ).get_data(as_text=True)
    assert "指标条件第 2 条：“很多”不是数字" in page
    assert 'class="chip filter-chip">ROI 实际值 ≥ 2' in page  # the good condition still applies
    assert 'value="ROI ≥ 很多"' in page  # the bad one back in its box, to be fixed
    assert 'name="metric_range" value="roi.actual&gt;=2"' in page  # kept as a hidden value
    assert "宝" * 101 not in page.split('class="active-filters"')[1].split("</ul>")[0]


@pytest.mark.parametrize("text", ["roi.targt>=2", "roi.lfit<0", "gmv.>5"])
def test_a_misspelt_field_in_the_url_form_is_refused_not_read_as_the_actual(text: str) -> None:
    with pytest.raises(conditions.ConditionError, match="点号后应为 actual") as raised:
        conditions.parse(text)
    assert raised.value.box == "mf_field"
