"""The JSON API reads a number or a date sent as text the way the forms do (kb/parsing.py)."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import campaign_payload


def test_the_api_takes_amounts_and_dates_written_as_people_write_them(
    client: FlaskClient,
) -> None:
    body = campaign_payload(
        budget_cny="35万元",
        start_date="2025年12月1日",
        end_date="2025/12/20",
        metrics=[{"name": "GMV", "unit": "万元", "target": "1.2亿", "actual": "13,500"}],
    )
    response = client.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.get_json()
    stored = response.get_json()
    assert stored["budget_cny"] == 350_000
    assert (stored["start_date"], stored["end_date"]) == ("2025-12-01", "2025-12-20")
    assert (stored["metrics"][0]["target"], stored["metrics"][0]["actual"]) == (12_000, 13_500)


def test_the_api_names_a_date_without_its_year(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/campaigns", json=campaign_payload(start_date="12月1日", budget_cny="很多")
    )
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert fields["start_date"].startswith("请写上年份，如 ")
    assert fields["budget_cny"] == "请输入数字，如 50万、1.2亿、3,500 或 3.5%"


def test_a_json_true_or_false_is_no_number(client: FlaskClient) -> None:
    body = campaign_payload(
        budget_cny=True,
        metrics=[{"name": "GMV", "unit": "元", "target": True, "actual": False}],
    )
    response = client.post("/api/v1/campaigns", json=body)
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    number = "请输入数字，如 50万、1.2亿、3,500 或 3.5%"
    assert fields == {
        "budget_cny": number,
        "metrics.0.target": number,
        "metrics.0.actual": number,
    }


def test_a_bound_is_written_as_a_person_would(client: FlaskClient) -> None:
    response = client.post("/api/v1/campaigns", json=campaign_payload(budget_cny=-5))
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"budget_cny": "不能小于 0"}  # not 0.0
