"""A draft's analysis explains only the similar cases it lists, and lists the best ones."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from kb.drafts import analysis
from tests.factories import campaign_payload

DRAFT: dict[str, Any] = {
    "title": "沉睡会员召回：满减券 + 短信",
    "goal_type": "reactivation",
    "goal": "召回 90 天未下单的会员",
    "audience": ["沉睡用户"],
    "channels": ["短信"],
    "metrics": [{"name": "转化率", "unit": "%", "target": 11}],
}


def test_only_the_listed_cases_are_explained(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        response = client.post(
            "/api/v1/campaigns",
            json=campaign_payload(
                external_id=f"recall-{i}",
                title=f"沉睡会员召回第{i}期",
                metrics=[
                    {"name": "转化率", "unit": "%", "target": 12.0, "actual": 9.0 + i},
                    {"name": "GMV", "unit": "万元", "target": 100.0, "actual": 90.0 + i},
                ],
            ),
        )
        assert response.status_code == 201, response.get_json()
    full = client.post("/api/v1/similar", json={**DRAFT, "limit": 6}).get_json()
    assert len(full["similar"]) == 6
    explained: list[str] = []
    metric_to_dict = analysis.metric_to_dict

    def counting(metric: Any) -> dict[str, Any]:
        explained.append(metric.name)
        return metric_to_dict(metric)

    monkeypatch.setattr(analysis, "metric_to_dict", counting)
    listed = client.post("/api/v1/similar", json={**DRAFT, "limit": 2}).get_json()
    # The forecast still weighs all six cases; only the two listed are assessed for the page.
    assert len(explained) == 2 * 2
    assert listed["similar"] == full["similar"][:2]
    assert listed["forecast"] == full["forecast"]
