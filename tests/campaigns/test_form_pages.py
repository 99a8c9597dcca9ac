"""The campaign form as a team types into it: 50万 and 2025年12月1日, catalog suggestions, 未归类
with a one-click mapping, no growing blank rows, and an edit conflict that shows what changed."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from tests.factories import campaign_payload


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "title": "618 宝妈拼团",
        "industry": "母婴",
        "department": "用户增长部",
        "goal_type": "referral",
        "status": "completed",
        "start_date": "2025/6/1",
        "end_date": "2025年6月18日",
        "budget_cny": "50万",
        "audience": "宝妈、新用户",
        "metrics-0-name": "GMV",
        "metrics-0-unit": "万元",
        "metrics-0-target": "1.2亿",
        "metrics-0-actual": "13,500",
        "metrics-1-name": "转化率",
        "metrics-1-unit": "%",
        "metrics-1-actual": "3.5%",
    }
    data.update(overrides)
    return data


def text(response: Any) -> str:
    body: str = response.get_data(as_text=True)
    return body


def saved_id(response: Any) -> int:
    assert response.status_code == 302, text(response)
    match = re.search(r"/campaigns/(\d+)$", response.headers["Location"])
    assert match is not None
    return int(match[1])


def test_amounts_percentages_and_dates_as_a_chinese_team_writes_them(
    client: FlaskClient,
) -> None:
    campaign_id = saved_id(client.post("/campaigns/new", data=form_data()))
    stored = client.get(f"/api/v1/campaigns/{campaign_id}").get_json()
    assert stored["start_date"] == "2025-06-01"
    assert stored["end_date"] == "2025-06-18"
    assert stored["budget_cny"] == 500_000
    gmv, conversion = stored["metrics"]
    assert (gmv["target"], gmv["actual"]) == (12_000, 13_500)  # 1.2亿 in 万元
    assert conversion["actual"] == 3.5

    # The edit form shows the stored values exactly, in 万 where that is exact.
    page = text(client.get(f"/campaigns/{campaign_id}/edit"))
    assert 'name="budget_cny" value="50万"' in page
    assert 'value="12000"' in page


def test_an_exact_budget_survives_an_edit_unchanged(client: FlaskClient) -> None:
    campaign_id = saved_id(client.post("/campaigns/new", data=form_data(budget_cny="1234567")))
    page = text(client.get(f"/campaigns/{campaign_id}/edit"))
    assert 'value="1234567"' in page  # not the rounded "123.46 万" of the campaign page


def test_a_date_without_a_year_is_asked_for_in_chinese_and_the_rest_is_kept(
    client: FlaskClient,
) -> None:
    response = client.post("/campaigns/new", data=form_data(start_date="12月1日"))
    assert response.status_code == 422
    page = text(response)
    assert "请写上年份，如" in page
    assert "开始日期</a>：请写上年份" in page  # the summary names the field in Chinese
    assert "start_date" not in re.sub(r'(name|id|href)="[^"]*"', "", page.split("<form")[0])
    assert 'value="12月1日"' in page
    assert 'value="50万"' in page
    assert 'value="1.2亿"' in page


def test_catalog_suggestions_for_industry_and_metric_names(client: FlaskClient) -> None:
    client.post("/api/v1/campaigns", json=campaign_payload(industry="宠物用品"))
    page = text(client.get("/campaigns/new"))
    industries = page.split('<datalist id="industries">')[1].split("</datalist>")[0]
    assert '<option value="宠物用品">' in industries  # a value already in use
    assert '<option value="电商">' in industries
    names = page.split('<datalist id="metric-names">')[1].split("</datalist>")[0]
    for name in ("GMV", "转化率", "成交额", "核销率"):
        assert f'<option value="{name}">' in names


def test_an_unknown_metric_is_explained_and_mapped_in_one_click(client: FlaskClient) -> None:
    data = form_data(**{"metrics-0-name": "成交金额", "end_date": "2025年5月1日"})
    page = text(client.post("/campaigns/new", data=data))
    assert "未归类" in page
    assert "指标目录里没有“成交金额”" in page
    assert 'name="map_metric" value="0:GMV"' in page

    remapped = client.post("/campaigns/new", data={**data, "map_metric": "0:GMV"})
    assert remapped.status_code == 200  # shown again, nothing saved
    page = text(remapped)
    assert 'name="metrics-0-name" value="GMV"' in page
    assert "指标目录里没有“成交金额”" not in page
    assert 'value="2025年5月1日"' in page  # the rest as typed


def rendered_rows(page: str, section: str) -> int:
    fieldset = page.split(f'data-section="{section}"')[1].split("</fieldset>")[0]
    return fieldset.split("<template>")[0].count('<div class="row">')


def test_showing_the_form_again_adds_no_blank_rows(client: FlaskClient) -> None:
    data = form_data(end_date="2025-01-01")  # before the start: shown again with an error
    first = text(client.post("/campaigns/new", data=data))
    # Post back exactly what the browser would: every row shown, the blank ones included.
    posted = dict(data)
    for index in range(rendered_rows(first, "metrics")):
        posted.setdefault(f"metrics-{index}-name", "")
    posted.update({"rewards-0-type": "", "hypotheses-0-statement": "", "documents-0-title": ""})
    second = text(client.post("/campaigns/new", data=posted))
    for section, filled in (("metrics", 2), ("rewards", 0), ("hypotheses", 0), ("documents", 0)):
        assert rendered_rows(first, section) == filled + 1
        assert rendered_rows(second, section) == filled + 1


def test_an_edit_conflict_shows_what_the_other_editor_changed(client: FlaskClient) -> None:
    campaign_id = saved_id(client.post("/campaigns/new", data=form_data()))
    # Another editor saves first: a new title and a higher budget.
    other = client.get(f"/api/v1/campaigns/{campaign_id}").get_json()
    body = campaign_payload(
        **{k: other[k] for k in ("title", "industry", "department", "goal_type", "status")},
        start_date=other["start_date"],
        end_date=other["end_date"],
        metrics=[],
    )
    body.update(title="618 宝妈拼团（对方改过）", budget_cny=800_000, version=1)
    assert client.put(f"/api/v1/campaigns/{campaign_id}", json=body).status_code == 200

    mine = form_data(lessons="三人团比五人团成团率高", version="1")
    response = client.post(f"/campaigns/{campaign_id}/edit", data=mine)
    assert response.status_code == 409
    page = text(response)
    assert "已被" in page
    assert "改到第 2 版" in page
    panel = page.split('class="card conflict-panel"')[1].split("</section>")[0]
    assert "活动名称" in panel
    assert "618 宝妈拼团（对方改过）" in panel
    assert "预算（元）" in panel
    assert "80 万元" in panel
    assert "三人团比五人团成团率高" in page  # the user's own input is kept
    assert 'name="version" value="1"' in page  # a plain 保存 again does not overwrite

    again = client.post(f"/campaigns/{campaign_id}/edit", data=mine)
    assert again.status_code == 409
    overwrite = client.post(f"/campaigns/{campaign_id}/edit", data={**mine, "overwrite": "2"})
    assert saved_id(overwrite) == campaign_id
    stored = client.get(f"/api/v1/campaigns/{campaign_id}").get_json()
    assert stored["title"] == "618 宝妈拼团"
    assert stored["version"] == 3


def test_the_campaign_page_explains_an_unclassified_metric_and_links_to_mapping_it(
    client: FlaskClient,
) -> None:
    metrics = [
        {"name": "GMV", "unit": "万元", "target": 100.0, "actual": 120.0},
        {"name": "直播间停留时长", "unit": "秒", "target": 60.0, "actual": 75.0},
    ]
    created = client.post("/api/v1/campaigns", json=campaign_payload(metrics=metrics))
    campaign_id = created.get_json()["id"]
    page = text(client.get(f"/campaigns/{campaign_id}"))
    assert page.count("未归类") == 1
    assert "不在指标目录中，不与其他活动比较" in page  # said on the page, not in a hover title
    assert f'href="/campaigns/{campaign_id}/edit#field-metrics-1-name">去归类</a>' in page
    edit = text(client.get(f"/campaigns/{campaign_id}/edit"))
    assert 'id="field-metrics-1-name"' in edit
    assert "指标目录里没有“直播间停留时长”" in edit
    # The catalog's own partial match (名称含「停留时长」) is the first choice offered.
    offered = re.findall(r'name="map_metric" value="1:([^"]+)"', edit)
    assert offered[0] == "人均观看时长"


def test_list_filter_and_draft_take_dates_as_typed(client: FlaskClient) -> None:
    client.post("/api/v1/campaigns", json=campaign_payload())  # ran 2024-10-20 to 2024-11-12
    listed = text(client.get("/campaigns", query_string={"date_from": "2024年11月1日"}))
    assert "双十一沉睡会员召回" in listed
    assert "已忽略" not in listed
    assert 'value="2024年11月1日"' in listed  # the box shows it as typed
    later = text(client.get("/campaigns", query_string={"date_from": "2024/12/1"}))
    assert "双十一沉睡会员召回" not in later

    draft = client.post(
        "/drafts/new",
        data={"title": "年货节召回", "start_date": "2025年1月10日", "end_date": "2025/1/20"},
    )
    assert draft.status_code == 200
    page = text(draft)
    assert 'value="2025年1月10日"' in page
    assert "请写上年份" not in page


def test_the_draft_form_suggests_and_maps_metric_names_too(client: FlaskClient) -> None:
    data = {"title": "年货节召回", "metrics-0-name": "成交金额", "metrics-0-target": "50万"}
    page = text(client.post("/drafts/new", data=data))
    names = page.split('<datalist id="metric-names">')[1].split("</datalist>")[0]
    assert '<option value="成交额">' in names
    assert "指标目录里没有“成交金额”" in page
    mapped = text(client.post("/drafts/new", data={**data, "map_metric": "0:GMV"}))
    assert 'name="metrics-0-name" value="GMV"' in mapped
    assert 'value="50万"' in mapped
