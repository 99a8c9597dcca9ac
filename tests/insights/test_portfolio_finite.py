"""Numbers too large for a float become null in the portfolio, never ``Infinity`` (not JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient

from tests.factories import campaign_payload

PERIOD = "date_from=2024-01-01&date_to=2024-12-31"


def _strict(text: str) -> Any:
    """Parse JSON as the standard defines it: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON answer")

    return json.loads(text, parse_constant=refuse)


def _huge(title: str) -> dict[str, Any]:
    # Each number is finite and accepted; their products and sums overflow a float.
    return campaign_payload(
        title=title,
        external_id=None,
        goal_type="gmv",
        budget_cny=1e308,
        metrics=[
            {"name": "GMV", "unit": "元", "baseline": 1e-300, "target": 100.0, "actual": 1e308},
            {"name": "券成本", "unit": "亿元", "baseline": None, "target": None, "actual": 1e308},
        ],
    )


def test_the_portfolio_answers_null_where_a_number_overflows(client: FlaskClient) -> None:
    for title in ("超大活动一", "超大活动二"):
        created = client.post("/api/v1/campaigns", json=_huge(title))
        assert created.status_code == 201, created.get_json()

    answer = client.get(f"/api/v1/portfolio?{PERIOD}")
    assert answer.status_code == 200
    body = _strict(answer.get_data(as_text=True))
    row = body["campaigns"][0]
    assert row["reward_spend_cny"] is None  # 1e308 亿元 is past a float
    assert row["budget_cny"] == 1e308
    assert row["key_metric"]["attainment_pct"] == 1e308
    total = body["total"]
    assert total["budget_cny"] is None  # two budgets of 1e308 do not add up in a float
    assert total["median_attainment_pct"] is None  # (1e308 + 1e308) / 2 overflows
    assert total["hit_share_pct"] == 100.0

    page = client.get(f"/portfolio?{PERIOD}").get_data(as_text=True)
    assert "Infinity" not in page
    assert "NaN" not in page


def test_the_app_never_writes_nan_or_infinity_as_json(app: Flask) -> None:
    with app.app_context():
        assert app.json.dumps({"x": 1.5}) == '{"x": 1.5}'
        for number in (float("inf"), float("-inf"), float("nan")):
            with pytest.raises(ValueError, match="JSON compliant"):
                app.json.dumps({"x": number})
            with app.test_request_context(), pytest.raises(ValueError, match="JSON compliant"):
                jsonify(x=number)
