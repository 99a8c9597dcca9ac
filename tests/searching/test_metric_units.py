"""Metric conditions compare values in one base unit: 元 for money, one item for counts.

A GMV typed as 120 (万元) and one typed as 1.2 (亿元) both pass "GMV 实际值 ≥ 50万"; a filter's
number is read by the same reader (kb/parsing.py) as the stored unit. These tests run the real
Whoosh index, through the API, on campaigns written in mixed units and on the demo data.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from kb import parsing
from kb.campaigns import metrics as metric_catalog
from kb.demo import demo_records
from kb.searching import conditions
from search import analysis
from tests.factories import campaign_payload


@pytest.mark.parametrize(
    ("unit", "scale"),
    [
        ("元", 1.0), ("万元", 1e4), ("亿元", 1e8), ("千元", 1e3), ("k", 1e3), ("w", 1e4),
        ("萬元", 1e4), ("人", 1.0), ("万人", 1e4), ("人次", 1.0), ("万人次", 1e4), ("单", 1.0),
        ("万单", 1e4), ("亿", 1e8), ("%", 1.0), ("％", 1.0), ("‰", 0.1), ("倍", 1.0), ("", 1.0),
        (":1", 1.0), ("元/人", 1.0), ("分", 1.0), ("美元", None), ("万美元", None),
        ("次/万人", None), ("每100人", None),
    ],
)  # fmt: skip
def test_units_read_to_their_base(unit: str, scale: float | None) -> None:
    assert parsing.base_scale(unit) == scale


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("50万", 5e5), ("50万元", 5e5), ("1.2亿元", 1.2e8), ("8k", 8e3), ("3万人", 3e4),
        ("1.5万人次", 1.5e4), ("20万单", 2e5), ("80%", 80.0), ("4.2倍", 4.2), ("1:4.2", 4.2),
        ("3‰", 0.3), ("50美元", "50美元"), ("很多", "很多"),
    ],
)  # fmt: skip
def test_a_filter_number_is_read_to_the_same_base(typed: str, value: float | str) -> None:
    assert parsing.parse_to_base(typed) == (
        value if isinstance(value, str) else pytest.approx(value)
    )


@pytest.mark.parametrize(
    ("typed", "code", "label"),
    [
        ("GMV 实际值 ≥ 50万", "gmv.actual>=500000", "GMV 实际值 ≥ 50万"),
        ("成交额 ≥ 1.2亿元", "gmv.actual>=120000000", "GMV 实际值 ≥ 1.2亿"),
        ("GMV 目标值 < 100万", "gmv.target<1000000", "GMV 目标值 ＜ 100万"),
        ("gmv.target>=1000000", "gmv.target>=1000000", "GMV 目标值 ≥ 100万"),
    ],
)
def test_target_conditions_read_both_ways(typed: str, code: str, label: str) -> None:
    condition = conditions.parse(typed)
    assert (condition.code, condition.label) == (code, label)
    assert conditions.parse(condition.code) == condition


def test_the_index_fingerprint_carries_the_fields_version(monkeypatch: pytest.MonkeyPatch) -> None:
    # Indexes built before metric values were in base units are named by the old fingerprint:
    # a host sees its index as stale and rebuilds it on start.
    before = analysis.analyzer_fingerprint()
    monkeypatch.setattr(analysis, "INDEX_FIELDS_VERSION", analysis.INDEX_FIELDS_VERSION - 1)
    assert analysis.analyzer_fingerprint() != before


def _create(client: FlaskClient, key: str, *metrics: dict[str, Any]) -> int:
    body = campaign_payload(external_id=key, title=f"单位测试 {key}", metrics=list(metrics))
    response = client.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.get_json()
    campaign_id: int = response.get_json()["id"]
    return campaign_id


def _metric(name: str, unit: str, target: float, actual: float) -> dict[str, Any]:
    return {"name": name, "unit": unit, "baseline": None, "target": target, "actual": actual}


def _ids(client: FlaskClient, *ranges: str, q: str = "") -> set[int]:
    params = {"q": q, "metric_range": list(ranges), "limit": 100}
    response = client.get("/api/v1/search", query_string=params)
    assert response.status_code == 200, response.get_json()
    return {result["id"] for result in response.get_json()["results"]}


def test_amounts_in_any_unit_compare_in_yuan(client: FlaskClient) -> None:
    wan = _create(client, "gmv-wan", _metric("GMV", "万元", 100, 120))  # 1.2 million 元
    yi = _create(client, "gmv-yi", _metric("成交额", "亿元", 1.5, 1.2))  # 120 million 元
    yuan = _create(client, "gmv-yuan", _metric("GMV", "元", 500_000, 300_000))
    thousands = _create(client, "gmv-k", _metric("交易总额", "千元", 400, 450))  # 450,000 元
    assert _ids(client, "GMV 实际值 ≥ 50万") == {wan, yi}
    assert _ids(client, "gmv.actual>=500000") == {wan, yi}  # the URL form reads the same
    assert _ids(client, "GMV ≥ 1.2亿元") == {yi}
    assert _ids(client, "GMV 实际值 < 50万") == {yuan, thousands}
    assert _ids(client, "GMV 实际值 = 120万") == {wan}
    # Targets: 100万, 1.5亿, 50万 and 40万 元.
    assert _ids(client, "GMV 目标值 ≥ 50万") == {wan, yi, yuan}
    assert _ids(client, "GMV 目标值 < 50万") == {thousands}
    # Attainment is unit-free: 120 %, 80 %, 60 %, 112.5 %.
    assert _ids(client, "GMV 达成率 ≥ 100%") == {wan, thousands}


def test_counts_and_ratios_compare_in_one_base(client: FlaskClient) -> None:
    people = _create(client, "users-ren", _metric("新增用户数", "人", 20_000, 34_600))
    wan_people = _create(client, "users-wan", _metric("新增用户数", "万人", 10, 12))
    roi_times = _create(client, "roi-bei", _metric("ROI", "倍", 3, 3.5))
    roi_percent = _create(client, "roi-pct", _metric("ROI", "%", 300, 420))  # 4.2 倍
    roi_ratio = _create(client, "roi-ratio", _metric("ROI", ":1", 2, 2.5))
    assert _ids(client, "新增用户数 实际值 ≥ 5万") == {wan_people}
    assert _ids(client, "新增用户数 实际值 ≥ 3万人") == {people, wan_people}
    assert _ids(client, "新增用户数 目标值 ≥ 10万") == {wan_people}
    assert _ids(client, "ROI ≥ 3") == {roi_times, roi_percent}
    assert _ids(client, "ROI ≥ 4") == {roi_percent}
    assert _ids(client, "ROI < 3") == {roi_ratio}


def test_a_metric_in_an_unreadable_unit_is_kept_but_not_compared(client: FlaskClient) -> None:
    # 美元 has no rate to 元: the GMV's actual and target stay out of the numbers (a range on
    # them cannot tell), while its attainment, which needs no unit, and its name in the text
    # still find the campaign.
    dollars = _create(client, "gmv-usd", _metric("GMV", "万美元", 10, 12))
    yuan = _create(client, "gmv-cny", _metric("GMV", "万元", 10, 12))
    assert _ids(client, "GMV 实际值 ≥ 1万") == {yuan}
    assert _ids(client, "GMV 目标值 ≥ 1万") == {yuan}
    assert _ids(client, "GMV 达成率 ≥ 100%") == {dollars, yuan}
    assert dollars in _ids(client, q="GMV")


def _demo_metric(record: dict[str, Any], key: str) -> dict[str, Any] | None:
    """Return a demo campaign's first metric under a catalog key (the one the index filters)."""
    for metric in record["metrics"]:
        found = metric_catalog.match(metric["name"], metric["unit"])
        if found is not None and found.metric.key == key:
            return metric
    return None


def _demo_expected(key: str, field: str, test: Any) -> set[str]:
    """Return the demo campaigns whose metric passes ``test`` in 元 or 人.

    The demo file's units converted by hand here, not through the code under test.
    """
    to_base = {"万元": 1e4, "元": 1.0, "人": 1.0, "万人": 1e4}
    found = set()
    for record in demo_records():
        metric = _demo_metric(record, key)
        value = None if metric is None else metric.get(field)
        if metric is not None and value is not None and test(value * to_base[metric["unit"]]):
            found.add(record["external_id"])
    return found


def _demo_ids(demo: tuple[FlaskClient, dict[int, str]], condition: str) -> set[str]:
    client, keys = demo
    response = client.get(
        "/api/v1/search", query_string={"q": "", "metric_range": condition, "limit": 100}
    )
    assert response.status_code == 200, response.get_json()
    return {keys[result["id"]] for result in response.get_json()["results"]}


@pytest.mark.parametrize(
    ("condition", "key", "field", "test"),
    [
        # The demo's GMVs are in 万元 (12640 = 1.264 亿元); before, "1000万" met none of them.
        ("GMV 实际值 ≥ 1000万", "gmv", "actual", lambda v: v >= 1e7),
        ("GMV 实际值 < 0.3亿元", "gmv", "actual", lambda v: v < 3e7),
        ("GMV 目标值 ≥ 1亿", "gmv", "target", lambda v: v >= 1e8),
        ("新增用户数 实际值 ≥ 7万", "new_users", "actual", lambda v: v >= 7e4),
    ],
)
def test_demo_filters_read_amounts_in_yuan(
    demo: tuple[FlaskClient, dict[int, str]], condition: str, key: str, field: str, test: Any
) -> None:
    expected = _demo_expected(key, field, test)
    assert expected  # the condition selects something, and not everything
    assert expected != _demo_expected(key, field, lambda v: True)
    assert _demo_ids(demo, condition) == expected


def test_demo_attainment_filter_is_unit_free(
    demo: tuple[FlaskClient, dict[int, str]],
) -> None:
    expected = set()
    for record in demo_records():
        gmv = _demo_metric(record, "gmv")
        measured = gmv and gmv.get("actual") is not None and gmv.get("target")
        if measured and gmv["actual"] >= gmv["target"]:  # GMV is higher-is-better
            expected.add(record["external_id"])
    assert expected
    assert _demo_ids(demo, "GMV 达成率 ≥ 100%") == expected
