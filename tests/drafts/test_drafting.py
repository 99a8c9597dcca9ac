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
    assert metric["n"] == 0
    assert metric["median"] is None


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
    form = _form()
    page = client.post("/drafts/new", data=form).get_data(as_text=True)
    assert "双十二鲜丰会员日" in page
    assert "优惠叠加风险" in page
    assert "同一目标：召回" in page
    assert "4 个相似活动中有 2 个" in page
    assert 'value="沉睡用户、价格敏感用户"' in page  # the form keeps its values
    response = client.post("/drafts/new", data={**form, "action": "save"})
    assert response.status_code == 302
    saved = client.get(response.headers["Location"].replace("/campaigns/", "/api/v1/campaigns/"))
    assert saved.get_json()["status"] == "planned"


STACKING_LESSON = "多券叠加必须有最低成交价护栏：叠满后实付不得低于成本价 × 1.05"


@pytest.fixture
def stacking_case(client: FlaskClient, history: dict[str, int]) -> int:
    """A completed big sale whose stacked coupons were farmed: another goal, the key lesson."""
    return create(
        client,
        external_id="four-coupons",
        title="2023 双十一全站大促：四券叠加被羊毛党集中薅券",
        goal_type="gmv",
        audience=["价格敏感用户", "新用户"],
        products=["零食饮料"],
        rewards=[
            {"type": "满减券", "detail": "每满 300 减 50", "stackable": True},
            {"type": "折扣", "detail": "品类券 8.5 折", "stackable": True},
        ],
        start_date="2023-10-24",
        end_date="2023-11-11",
        lessons=f"- {STACKING_LESSON}\n- 大促复盘要把 ROI 和毛利放在第一屏",
        recommendations="建立统一的优惠叠加矩阵",
        hypotheses=[],
        metrics=[{"name": "GMV", "unit": "万元", "target": 12000.0, "actual": 12640.0}],
    )


def test_summary_band_in_the_api(
    client: FlaskClient, history: dict[str, int], stacking_case: int
) -> None:
    result = similar(client, DRAFT)
    ranks = [case["id"] for case in result["similar"]]
    assert ranks.index(stacking_case) >= 4  # the recalls are more alike
    summary = result["summary"]
    assert summary["collisions"] == 1
    assert summary["stacking"] == 1
    assert summary["worst_with_id"] == history["planned"]
    assert summary["worst_discount_pct"] == pytest.approx(100 * (1 - 0.8 * (1 - 40 / 199)), abs=0.1)
    assert summary["all_business_lines"] is False
    # Key metric per case, computed here from the fixture: the recalls' 转化率 (target 12) hit
    # at 12.5 and 13; the sale's GMV hit; the unrelated 美妆 case's GMV hit.
    expected = {history["recall1"], history["recall3"], stacking_case, history["other"]}
    judged = [case["id"] for case in result["similar"]]
    assert summary["similar"] == len(judged)
    assert summary["key_metric_judged"] == len(judged)
    assert summary["key_metric_hit"] == len(expected & set(judged))
    # The lesson on the draft's own risk comes first, though its case ranks lower.
    lesson = summary["lessons"][0]
    assert lesson["campaign_id"] == stacking_case
    assert lesson["text"] == STACKING_LESSON
    assert "与草案的可叠加优惠相关" in lesson["why"]
    (headline,) = summary["forecasts"]
    (metric,) = result["forecast"]["metrics"]
    assert headline["name"] == "转化率"
    assert headline["enough"] is metric["enough"]
    assert headline["headline"] == metric.get("headline", headline["headline"])
    assert "样本不足" in headline["headline"]


def test_without_stacking_the_nearest_cases_lessons_lead(
    client: FlaskClient, history: dict[str, int], stacking_case: int
) -> None:
    body = {**DRAFT, "rewards": [{"type": "积分", "detail": "下单返积分", "stackable": False}]}
    result = similar(client, body)
    assert result["summary"]["stacking"] == 0
    assert result["summary"]["worst_discount_pct"] is None
    assert result["summary"]["lessons"][0]["campaign_id"] != stacking_case


def test_similar_returns_the_matching_playbooks(
    client: FlaskClient, history: dict[str, int]
) -> None:
    body = {
        "title": "叠券要防羊毛党",
        "theme": "risk",
        "body": "## 做法\n- 任一 SKU **叠满**后实付不得低于成本价 × 1.05",
        "supporting_ids": [history["recall0"]],
        "contradicting_ids": [],
    }
    created = client.post("/api/v1/playbooks", json=body)
    assert created.status_code == 201, created.get_json()
    unrelated = {**body, "title": "客服排班按小时调整", "theme": "ops", "supporting_ids": []}
    assert client.post("/api/v1/playbooks", json=unrelated).status_code == 201
    draft = {**DRAFT, "summary": "双十二满减叠加，防止羊毛党薅券"}
    result = similar(client, draft)
    (playbook,) = result["playbooks"]
    assert playbook == {
        "id": created.get_json()["id"],
        "title": "叠券要防羊毛党",
        "theme": "risk",
        "theme_label": "风控",
        "excerpt": "做法 任一 SKU 叠满后实付不得低于成本价 × 1.05",
        "supporting": 1,
        "contradicting": 0,
    }
    assert result["summary"]["playbooks"] == [playbook]
    page = client.post("/drafts/new", data={**_form(), "summary": draft["summary"]})
    html = page.get_data(as_text=True)
    assert html.count("叠券要防羊毛党") == 2  # quoted in the band, listed in the details
    assert "做法 任一 SKU 叠满后实付不得低于成本价 × 1.05" in html


def test_draft_metrics_take_a_baseline_not_an_actual(
    client: FlaskClient, history: dict[str, int]
) -> None:
    with_actual = {**DRAFT, "metrics": [{"name": "转化率", "unit": "%", "target": 11, "actual": 9}]}
    response = client.post("/api/v1/similar", json=with_actual)
    assert response.status_code == 422
    message = response.get_json()["error"]["fields"]["metrics.0.actual"]
    assert "草案还没有实际值" in message
    with_baseline = {
        **DRAFT,
        "metrics": [{"name": "转化率", "unit": "%", "baseline": 8, "target": 11}],
    }
    assert similar(client, with_baseline)["forecast"]["metrics"][0]["name"] == "转化率"
    assert (
        "actual"
        not in client.get("/api/v1/openapi.json")
        .get_data(as_text=True)
        .split('"DraftMetricIn"')[1]
        .split("}}")[0]
    )

    blank = client.get("/drafts/new").get_data(as_text=True)
    assert 'name="metrics-0-baseline"' in blank
    assert 'name="metrics-0-target"' in blank
    assert 'name="metrics-0-actual"' not in blank
    # The page never sends an 实际 on: one posted by hand is left out, not an error.
    page = client.post(
        "/drafts/new", data={**_form(), "metrics-0-baseline": "8", "metrics-0-actual": "9"}
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="metrics-0-baseline" value="8"' in html
    assert 'name="metrics-0-actual"' not in html
    # The campaign form keeps its 实际.
    assert 'name="metrics-0-actual"' in client.get("/campaigns/new").get_data(as_text=True)


def test_a_saved_draft_never_collides_with_itself(
    client: FlaskClient, history: dict[str, int]
) -> None:
    form = _form(draft_key="draft-mine")
    saved = client.post("/drafts/new", data={**form, "action": "save"})
    assert saved.status_code == 302
    own = int(saved.headers["Location"].rsplit("/", 1)[1])
    stored = client.get(f"/api/v1/campaigns/{own}").get_json()
    assert (stored["status"], stored["external_id"]) == ("planned", "draft-mine")

    page = client.post("/drafts/new", data=form).get_data(as_text=True)
    assert "双十二鲜丰会员日" in page  # the other planned campaign still collides
    assert f'href="/campaigns/{own}"' not in page
    again = client.post("/drafts/new", data={**form, "action": "save"})
    assert again.headers["Location"].endswith(f"/campaigns/{own}")  # saved once, not twice

    def conflicts(body: dict[str, Any]) -> set[int]:
        return {c["id"] for c in similar(client, body)["conflicts"]}

    assert conflicts(DRAFT) == {history["planned"], own}  # another draft: it does collide
    assert conflicts({**DRAFT, "draft_key": "draft-mine"}) == {history["planned"]}
    assert conflicts({**DRAFT, "campaign_id": own}) == {history["planned"]}
    assert similar(client, {**DRAFT, "campaign_id": own})["own_ids"] == [own]
    # A stored campaign's own view, page and API.
    mine = client.get(f"/api/v1/campaigns/{own}/similar").get_json()
    assert [c["id"] for c in mine["conflicts"]] == [history["planned"]]
    # (the campaign page loads its analysis after the page, from /campaigns/<id>/similar)
    detail = client.get(f"/campaigns/{own}/similar?fragment=1").get_data(as_text=True)
    assert "双十二鲜丰会员日" in detail
    assert detail.count(f'href="/campaigns/{own}"') == 0


def test_without_a_business_line_collisions_cross_lines_and_say_so(
    client: FlaskClient, history: dict[str, int]
) -> None:
    body = {key: value for key, value in DRAFT.items() if key != "business_line"}
    result = similar(client, body)
    (conflict,) = result["conflicts"]
    assert conflict["business_line"] == "鲜丰到家"
    assert "草案未填业务线，按所有业务线检查；对方属于「鲜丰到家」" in conflict["reasons"]
    assert result["summary"]["all_business_lines"] is True
    assert result["business_line"] is None
    assert "草案未填业务线" not in str(similar(client, DRAFT)["conflicts"])

    form = _form(business_line="")
    page = client.post("/drafts/new", data=form).get_data(as_text=True)
    assert "已在<strong>所有业务线</strong>中检查冲突" in page
    assert 'name="narrow_business_line" value="鲜丰到家"' in page
    narrowed = client.post("/drafts/new", data={**form, "narrow_business_line": "宝贝优选"})
    html = narrowed.get_data(as_text=True)
    assert 'name="business_line" value="宝贝优选"' in html
    assert "没有发现日期重叠且人群或商品相同的活动" in html
    assert "所有业务线" not in html


def test_draft_page_lands_on_the_summary_band(client: FlaskClient, history: dict[str, int]) -> None:
    blank = client.get("/drafts/new").get_data(as_text=True)
    assert 'action="/drafts/new#summary"' in blank
    assert 'id="summary"' not in blank
    html = client.post("/drafts/new", data=_form()).get_data(as_text=True)
    band = html.index('id="summary"')
    assert band < html.index('id="collisions"') < html.index('id="similar-cases"')
    head = html[band : html.index('id="collisions"')]
    assert "双十二鲜丰会员日" in head
    assert "最坏叠加折扣约 36%" in head
    (headline,) = similar(client, DRAFT)["summary"]["forecasts"]
    assert f"<strong>转化率</strong>：{headline['headline']}" in head
    assert "主要指标达成" in head


def _form(**overrides: str) -> dict[str, str]:
    """Return the draft page's form for DRAFT (analyse), with ``overrides``."""
    form = {
        "title": DRAFT["title"],
        "industry": "电商",
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
        "department": "会员运营中心",
        "draft_key": "draft-page",
        "action": "analyze",
    }
    return {**form, **overrides}


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


def test_figures_as_extreme_as_a_float_allows_do_not_take_analysis_down(
    client: FlaskClient, history: dict[str, int]
) -> None:
    # A stored target 5e-324 against a baseline of 1e10 (their ratio underflows to 0), a budget
    # of 1e300: the corpus prior, the analogs' weights and the similarity all take logs of ratios.
    extreme = create(
        client,
        external_id="extreme",
        title="沉睡会员召回极值",
        budget_cny=1e300,
        metrics=[{"name": "转化率", "unit": "%", "baseline": 1e10, "target": 5e-324, "actual": 1}],
    )
    result = similar(client, {**DRAFT, "budget_cny": 5e-324})
    assert result["similar"]
    # The draft's own figures too: a viewer's request alone must not fail.
    draft_metrics = [{"name": "转化率", "unit": "%", "baseline": 1e300, "target": 1e-300}]
    assert similar(client, {**DRAFT, "metrics": draft_metrics})["forecast"] is not None
    response = client.get(f"/api/v1/campaigns/{extreme}/similar")
    assert response.status_code == 200, response.get_json()
