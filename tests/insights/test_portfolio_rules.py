"""Portfolio rules on hand-made campaigns: period edges, reward spend, segments, validation."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from tests.factories import campaign_payload


def create(app: Flask, **overrides: Any) -> int:
    with app.app_context():
        return services.create_campaign(validate_campaign(campaign_payload(**overrides))).id


def portfolio(client: FlaskClient, query: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/portfolio?{query}")
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_period_edges_trash_and_cancelled(
    insights_app: Flask, insights_client: FlaskClient
) -> None:
    ends_on_first_day = create(
        insights_app, external_id="p1", start_date="2024-12-01", end_date="2025-01-01"
    )
    starts_on_last_day = create(
        insights_app, external_id="p2", start_date="2025-03-31", end_date="2025-05-01"
    )
    create(insights_app, external_id="p3", start_date="2025-04-01", end_date="2025-04-30")
    create(insights_app, external_id="p4", start_date="2024-01-01", end_date="2024-12-31")
    create(insights_app, external_id="p5", start_date="2025-02-01", end_date="2025-02-02", status="cancelled")  # fmt: skip
    trashed = create(insights_app, external_id="p6", start_date="2025-02-01", end_date="2025-02-02")
    with insights_app.app_context():
        services.trash_campaign(trashed)

    body = portfolio(insights_client, "date_from=2025-01-01&date_to=2025-03-31")
    assert [c["id"] for c in body["campaigns"]] == [ends_on_first_day, starts_on_last_day]
    assert body["excluded_cancelled"] == 1
    assert body["total"]["campaigns"] == 2
    assert body["crowding"]["months"] == ["2025-01", "2025-02", "2025-03"]
    # The factory's audience: 沉睡用户 and 价格敏感用户; one campaign in January, one in March.
    assert body["crowding"]["counts"] == [[1, 0, 1], [1, 0, 1]]


def test_reward_spend_is_summed_only_where_reported(
    insights_app: Flask, insights_client: FlaskClient
) -> None:
    base = campaign_payload()["metrics"]
    create(insights_app, external_id="r1", metrics=[
        *base,
        {"name": "券成本", "unit": "万元", "actual": 12.5},
        {"name": "红包发放金额", "unit": "元", "actual": 5000},
        {"name": "補貼金額", "unit": "萬元", "actual": 1},  # Traditional name and unit
        {"name": "奖励成本", "unit": "美元", "actual": 999},  # a unit we cannot add up: skipped
        {"name": "券成本", "unit": "万元", "target": 20},  # no actual: nothing spent to report
    ])  # fmt: skip
    create(insights_app, external_id="r2")  # reports no reward cost
    create(insights_app, external_id="r3", goal_type="gmv", budget_cny=None)

    body = portfolio(insights_client, "date_from=2024-01-01&date_to=2024-12-31")
    spends = sorted(
        (c["reward_spend_cny"] is None, c["reward_spend_cny"]) for c in body["campaigns"]
    )
    assert spends[0] == (False, 125_000 + 5_000 + 10_000)
    assert [s for none, s in spends[1:]] == [None, None]
    reactivation = next(g for g in body["goals"] if g["goal_type"] == "reactivation")
    assert reactivation["reward_spend_cny"] == 140_000
    assert reactivation["reward_spend_known"] == 1
    assert reactivation["campaigns"] == 2
    gmv = next(g for g in body["goals"] if g["goal_type"] == "gmv")
    assert gmv["reward_spend_cny"] is None
    assert (gmv["budget_cny"], gmv["budget_known"]) == (0, 0)
    assert body["total"]["budget_cny"] == 2 * 350_000
    assert body["total"]["budget_known"] == 2


def test_key_metric_results_and_medians(insights_app: Flask, insights_client: FlaskClient) -> None:
    def key(target: float, actual: float | None, name: str = "GMV") -> list[dict[str, Any]]:
        return [{"name": name, "unit": "万元", "target": target, "actual": actual}]

    create(insights_app, external_id="k1", metrics=key(100, 120))  # 120 %, hit
    create(insights_app, external_id="k2", metrics=key(100, 90))  # 90 %
    create(insights_app, external_id="k3", metrics=key(50, 40, "获客成本"))  # lower: 125 %, hit
    create(insights_app, external_id="k4", metrics=key(100, None))  # no actual: not judged
    create(insights_app, external_id="k5", metrics=key(100, 10), status="running")  # not over
    create(insights_app, external_id="k6", metrics=[])  # no metric with a target
    body = portfolio(insights_client, "date_from=2024-01-01&date_to=2024-12-31")
    total = body["total"]
    assert (total["campaigns"], total["judged"], total["hit"]) == (6, 3, 2)
    assert total["hit_share_pct"] == 66.7
    assert total["median_attainment_pct"] == 120.0
    assert total["attainment_n"] == 3
    rows = {c["key_metric"]["name"] if c["key_metric"] else None for c in body["campaigns"]}
    assert rows == {"GMV", "获客成本", None}


def test_segments_merge_spellings_and_uncovered_respects_the_business_line(
    insights_app: Flask, insights_client: FlaskClient
) -> None:
    create(insights_app, external_id="a1", audience=["新客", "寶媽"], business_line="甲")
    create(insights_app, external_id="a2", audience=["新用户", "宝妈"], business_line="甲")
    create(insights_app, external_id="a3", audience=["新用户", "大学生"], business_line="甲",
           start_date="2020-01-01", end_date="2020-01-31")  # fmt: skip
    create(insights_app, external_id="a4", audience=["银发用户"], business_line="乙",
           start_date="2020-01-01", end_date="2020-01-31")  # fmt: skip
    body = portfolio(insights_client, "date_from=2024-01-01&date_to=2024-12-31")
    crowding = dict(zip(body["crowding"]["segments"], body["crowding"]["counts"], strict=True))
    assert set(crowding) == {"新用户", "宝妈"}  # the most common spelling names the segment
    assert crowding["新用户"][9] == 2  # 2024-10: both campaigns
    assert sorted(body["uncovered_segments"]) == ["大学生", "银发用户"]
    own_line = portfolio(
        insights_client, "date_from=2024-01-01&date_to=2024-12-31&business_line=甲"
    )
    assert own_line["uncovered_segments"] == ["大学生"]
    assert own_line["total"]["campaigns"] == 2


def test_empty_period(insights_app: Flask, insights_client: FlaskClient) -> None:
    body = portfolio(insights_client, "date_from=2030-01-01&date_to=2030-03-31")
    assert body["campaigns"] == []
    assert body["goals"] == []
    assert body["total"]["hit_share_pct"] is None
    assert body["crowding"] == {"segments": [], "months": ["2030-01", "2030-02", "2030-03"],
                                "counts": [], "crowded_at": 3}  # fmt: skip
    html = insights_client.get("/portfolio?date_from=2030-01-01&date_to=2030-03-31").get_data(
        as_text=True
    )
    assert "这段时间没有符合条件的活动" in html


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("date_from=2025-05-01&date_to=2025-04-30", {"date_to"}),
        ("date_from=2020-01-01&date_to=2025-01-31", {"date_to"}),  # 61 months
        ("date_from=12月1日", {"date_from"}),  # no year (20250101 reads as a date)
        ("goal_type=sales", {"goal_type"}),
        ("business_line=" + "x" * 101, {"business_line"}),
    ],
)
def test_bad_parameters_get_422_in_the_one_error_shape(
    insights_client: FlaskClient, query: str, fields: set[str]
) -> None:
    response = insights_client.get(f"/api/v1/portfolio?{query}")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == fields
    page = insights_client.get(f"/portfolio?{query}")
    assert page.status_code == 200  # the page shows what it can and says what it ignored
    assert "（已忽略）" in page.get_data(as_text=True)


def test_sixty_months_is_allowed(insights_client: FlaskClient) -> None:
    body = portfolio(insights_client, "date_from=2020-01-01&date_to=2024-12-31")
    assert len(body["crowding"]["months"]) == 60
