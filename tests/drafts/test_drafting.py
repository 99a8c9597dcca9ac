"""Drafting through the app: similar cases with reasons, collisions, forecast, feedback."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from kb.drafts.schemas import DraftAnalysisOut
from tests.factories import campaign_payload

PLANNED = {
    "external_id": "planned-1",
    "title": "双十二鲜丰会员日：满减叠加",
    "status": "planned",
    "business_line": "鲜丰到家",
    "audience": ["价格敏感用户", "高价值会员"],
    "products": ["有机蔬菜"],
    "rewards": [{"type": "满减券", "detail": "满 199 减 40", "stackable": True}],
    "start_date": "2026-12-10",
    "end_date": "2026-12-14",
    "metrics": [],
}
DRAFT: dict[str, Any] = {
    "title": "双十二沉睡会员召回：叠加券 + 企微社群",
    "industry": "电商",
    "business_line": "鲜丰到家",
    "goal_type": "reactivation",
    "goal": "召回 90 天未下单的会员",
    "audience": ["沉睡用户", "價格敏感用戶"],
    "products": ["有机蔬菜", "粮油"],
    "rewards": [{"type": "满减券", "detail": "8折", "stackable": True}],
    "channels": ["企业微信社群", "短信"],
    "start_date": "2026-12-12",
    "end_date": "2026-12-20",
    "metrics": [{"name": "转化率", "unit": "%", "target": 11}],
}


def create(client: FlaskClient, **overrides: Any) -> int:
    response = client.post("/api/v1/campaigns", json=campaign_payload(**overrides))
    assert response.status_code == 201, response.get_json()
    campaign_id: int = response.get_json()["id"]
    return campaign_id


@pytest.fixture
def history(client: FlaskClient) -> dict[str, int]:
    """Four completed recalls that measured 转化率, one unrelated campaign, one planned one."""
    ids = {}
    for i, actual in enumerate((9.6, 12.5, 10.0, 13.0)):
        ids[f"recall{i}"] = create(
            client,
            external_id=f"recall-{i}",
            title=f"沉睡会员召回第{i}期",
            start_date=f"202{i + 1}-10-20",
            end_date=f"202{i + 1}-11-12",
            metrics=[
                {"name": "转化率", "unit": "%", "baseline": 8.0, "target": 12.0, "actual": actual}
            ],
        )
    ids["other"] = create(
        client,
        external_id="other",
        title="美妆直播新品首发",
        industry="美妆",
        goal_type="gmv",
        audience=["白领"],
        products=["口红"],
        channels=["直播"],
        rewards=[],
        summary="直播间新品首发，主播讲解试色。",
        lessons="直播预告要提前三天",
        metrics=[{"name": "GMV", "unit": "万元", "target": 100.0, "actual": 120.0}],
    )
    ids["planned"] = create(client, **PLANNED)
    return ids


def similar(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/similar", json=body)
    assert response.status_code == 200, response.get_json()
    result: dict[str, Any] = response.get_json()
    DraftAnalysisOut.model_validate(result)
    return result


def test_similar_cases_rank_recalls_first_with_reasons(
    client: FlaskClient, history: dict[str, int]
) -> None:
    result = similar(client, DRAFT)
    ids = [case["id"] for case in result["similar"]]
    recalls = {history[f"recall{i}"] for i in range(4)}
    assert set(ids[:4]) == recalls
    assert history["planned"] not in ids  # only completed campaigns are past cases
    reasons = result["similar"][0]["reasons"]
    assert "同一目标：召回" in reasons
    assert any(r.startswith("共同人群：") and "沉睡用户" in r for r in reasons)
    assert any("满减券（可叠加）" in r for r in reasons)
    first = result["similar"][0]
    assert first["lessons"]
    assert first["outcome"]["转化率"]["actual"] is not None


def test_collision_with_a_planned_campaign_is_flagged(
    client: FlaskClient, history: dict[str, int]
) -> None:
    (conflict,) = similar(client, DRAFT)["conflicts"]
    assert conflict["id"] == history["planned"]
    assert conflict["overlap_days"] == 3  # 12-12 .. 12-14
    assert conflict["shared_audience"] == ["價格敏感用戶"]  # Traditional matches Simplified
    assert conflict["shared_products"] == ["有机蔬菜"]
    assert conflict["stacking_risk"] is True
    assert conflict["worst_case_discount_pct"] == pytest.approx(
        100 * (1 - 0.8 * (1 - 40 / 199)), abs=0.1
    )
    assert any("叠加" in reason for reason in conflict["reasons"])


@pytest.mark.parametrize(
    "change",
    [
        {"start_date": "2026-12-15", "end_date": "2026-12-20"},  # the day after it ends
        {"business_line": "宝贝优选"},  # another business line
        {"audience": ["大学生"], "products": ["文具"]},  # nobody in common
    ],
)
def test_look_alikes_do_not_collide(
    client: FlaskClient, history: dict[str, int], change: dict[str, Any]
) -> None:
    assert similar(client, {**DRAFT, **change})["conflicts"] == []


def test_forecast_from_analogs(client: FlaskClient, history: dict[str, int]) -> None:
    (metric,) = similar(client, DRAFT)["forecast"]["metrics"]
    assert metric["n"] == 4
    assert set(metric["case_ids"]) == {history[f"recall{i}"] for i in range(4)}
    # Below five analogs: the cases are named, no quartiles.
    assert metric["median"] is None
    assert "样本不足" in metric["summary"]
    assert "4 个相似活动中有 2 个" in metric["summary"]


def test_too_few_analogs_say_so(client: FlaskClient, history: dict[str, int]) -> None:
    body = {**DRAFT, "metrics": [{"name": "NPS", "unit": "分", "target": 40}]}
    (metric,) = similar(client, body)["forecast"]["metrics"]
    assert metric["enough"] is False
    assert metric["median"] is None
    assert "不做预测" in metric["summary"]


def test_not_useful_cases_stay_hidden_for_that_draft(
    client: FlaskClient, history: dict[str, int]
) -> None:
    body = {**DRAFT, "draft_key": "draft-abc"}
    first = similar(client, body)["similar"][0]["id"]
    response = client.post(
        "/api/v1/similar/feedback", json={"draft_key": "draft-abc", "campaign_id": first}
    )
    assert response.status_code == 204
    again = similar(client, body)
    assert first not in [case["id"] for case in again["similar"]]
    assert again["hidden"] == 1
    assert first in [case["id"] for case in similar(client, DRAFT)["similar"]]  # other drafts


def test_existing_campaign_has_the_same_view(client: FlaskClient, history: dict[str, int]) -> None:
    own = history["recall0"]
    result = client.get(f"/api/v1/campaigns/{own}/similar").get_json()
    assert own not in [case["id"] for case in result["similar"]]
    assert result["similar"][0]["id"] in {history[f"recall{i}"] for i in (1, 2, 3)}
    assert client.get("/api/v1/campaigns/999/similar").status_code == 404


def test_an_empty_draft_is_refused_by_field(client: FlaskClient) -> None:
    response = client.post("/api/v1/similar", json={"audience": ["宝妈"]})
    assert response.status_code == 422
    assert "title" in response.get_json()["error"]["fields"]


def test_draft_page_analyzes_and_saves(client: FlaskClient, history: dict[str, int]) -> None:
    form = {
        "title": DRAFT["title"],
        "industry": "电商",
        "department": "会员运营中心",
        "business_line": "鲜丰到家",
        "goal_type": "reactivation",
        "start_date": "2026-12-12",
        "end_date": "2026-12-20",
        "audience": "沉睡用户、价格敏感用户",
        "products": "有机蔬菜",
        "rewards-0-type": "满减券",
        "rewards-0-detail": "8折",
        "rewards-0-stackable": "on",
        "metrics-0-name": "转化率",
        "metrics-0-unit": "%",
        "metrics-0-target": "11",
        "draft_key": "draft-page",
    }
    page = client.post("/drafts/new", data={**form, "action": "analyze"}).get_data(as_text=True)
    assert "双十二鲜丰会员日" in page
    assert "优惠叠加风险" in page
    assert "同一目标：召回" in page
    assert "4 个相似活动中有 2 个" in page
    assert 'value="沉睡用户、价格敏感用户"' in page  # the form keeps its values
    response = client.post("/drafts/new", data={**form, "action": "save"})
    assert response.status_code == 302
    saved = client.get(response.headers["Location"].replace("/campaigns/", "/api/v1/campaigns/"))
    assert saved.get_json()["status"] == "planned"


def test_draft_page_errors_keep_input(client: FlaskClient) -> None:
    response = client.post(
        "/drafts/new",
        data={
            "title": "宝妈拼团",
            "audience": "宝妈",
            "start_date": "2026-12-20",
            "end_date": "2026-12-01",
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="err-end_date"' in page
    assert 'value="宝妈"' in page
    assert 'value="宝妈拼团"' in page
    empty = client.post("/drafts/new", data={"audience": "宝妈"}).get_data(as_text=True)
    assert 'id="err-title"' in empty
