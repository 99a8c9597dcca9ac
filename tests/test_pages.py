"""Web pages: list with filters, campaign page, the form (errors keep input), trash."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import campaign_payload


def create(client: FlaskClient, **overrides: Any) -> int:
    response = client.post("/api/v1/campaigns", json=campaign_payload(**overrides))
    assert response.status_code == 201
    campaign_id: int = response.get_json()["id"]
    return campaign_id


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "title": "618 宝妈拼团",
        "industry": "母婴",
        "department": "用户增长部",
        "goal_type": "referral",
        "status": "completed",
        "start_date": "2024-06-01",
        "end_date": "2024-06-18",
        "audience": "宝妈、新用户",
        "channels": "企业微信社群, 小程序",
        "metrics-0-name": "K值",
        "metrics-0-target": "1.5",
        "metrics-0-actual": "1.8",
        "rewards-0-type": "红包",
        "rewards-0-detail": "邀 3 人得 20 元",
        "rewards-0-stackable": "on",
        "lessons": "三人团比五人团成团率高",
    }
    data.update(overrides)
    return data


def text(response: Any) -> str:
    body: str = response.get_data(as_text=True)
    return body


def test_root_is_the_home_page(client: FlaskClient) -> None:
    page = text(client.get("/"))
    for heading in ("本周上线", "新复盘", "需要关注的预警", "待补复盘", "我的草案"):
        assert heading in page
    assert 'action="/search"' in page


def test_list_filters(client: FlaskClient) -> None:
    create(client, external_id="a", title="母婴拼团", industry="母婴", goal_type="referral")
    create(client, external_id="b", title="美妆直播", industry="美妆", goal_type="gmv")
    page = text(client.get("/campaigns?industry=美妆"))
    assert "美妆直播" in page
    assert "母婴拼团" not in page
    page = text(client.get("/campaigns?goal_type=referral&status=&date_from="))
    assert "母婴拼团" in page
    assert "美妆直播" not in page


def test_list_reports_an_ignored_bad_filter(client: FlaskClient) -> None:
    create(client)
    response = client.get("/campaigns?date_from=昨天")
    assert response.status_code == 200
    assert "筛选条件“起始日期”已忽略：日期格式应如 2025-12-01" in text(response)
    assert "date_from" not in text(response).split("<form")[0]
    assert "双十一沉睡会员召回" in text(response)


def test_list_paginates(app: Flask, client: FlaskClient) -> None:
    app.config["PER_PAGE"] = 2
    for i in range(5):
        create(client, external_id=f"p{i}", title=f"活动{i}", start_date=f"2024-01-0{i + 1}")
    page = text(client.get("/campaigns?page=3"))
    assert "第 3 / 3 页，共 5 条" in page
    assert "活动0" in page
    assert "活动4" not in page


def test_campaign_page_shows_elements_metrics_and_retro(client: FlaskClient) -> None:
    page = text(client.get(f"/campaigns/{create(client)}"))
    for expected in ("沉睡用户", "满减券", "可叠加", "企业微信社群", "35 万元", "2024年10月20日"):
        assert expected in page
    # 成交额: the key metric (a reactivation campaign with no 召回 metric: its first target).
    assert re.search(
        r'<tr class="hit key-metric">\s*<td>成交额[^\n]*?<span class="tag-key">主要指标',
        page,
    )
    assert "未指定，取第一个设了目标的指标" in page
    assert re.search(r'<tr class="miss">\s*<td>获客成本', page)
    assert "113.1%" in page
    assert "变差 30%" in page  # 获客成本 40 → 52: lower is better
    assert "<svg" in page
    assert "目标 vs 实际" in page
    assert "<strong>沉睡会员</strong>" in page  # Markdown rendered
    assert "<table>" in page  # document tables rendered


XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
]


@pytest.mark.parametrize("payload", XSS)
def test_markdown_is_sanitized(client: FlaskClient, payload: str) -> None:
    campaign_id = create(
        client,
        summary=payload,
        lessons=payload,
        title=payload,
        documents=[{"title": payload, "kind": "other", "body": payload}],
    )
    page = text(client.get(f"/campaigns/{campaign_id}"))
    assert "<script>alert" not in page
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", page, re.IGNORECASE)  # no event handler
    assert 'href="javascript:' not in page


def test_form_creates_a_campaign(client: FlaskClient) -> None:
    response = client.post("/campaigns/new", data=form_data())
    assert response.status_code == 302
    page = text(client.get(response.headers["Location"]))
    assert "618 宝妈拼团" in page
    assert "宝妈" in page
    assert "K值" in page
    assert "120%" in page
    stored = client.get("/api/v1/campaigns").get_json()["items"][0]
    assert stored["audience"] == ["宝妈", "新用户"]
    assert stored["channels"] == ["企业微信社群", "小程序"]
    assert stored["rewards"] == [{"type": "红包", "detail": "邀 3 人得 20 元", "stackable": True}]


def test_form_errors_are_shown_beside_fields_and_input_is_kept(client: FlaskClient) -> None:
    data = form_data(title="", end_date="2024-05-01", **{"metrics-0-target": "一点五"})
    response = client.post("/campaigns/new", data=data)
    assert response.status_code == 422
    page = text(response)
    assert re.search(r'id="err-title">必填<', page)
    assert re.search(r'id="err-end_date">结束日期不能早于开始日期<', page)
    assert re.search(r'id="err-metrics-0-target">请输入数字，如 50万、1.2亿、3,500 或 3.5%<', page)
    # Everything typed is still there, the wrong values included.
    for kept in ('value="一点五"', 'value="1.8"', 'value="宝妈、新用户"', "三人团比五人团成团率高",
                 'value="邀 3 人得 20 元"', 'value="2024-05-01"'):  # fmt: skip
        assert kept in page
    assert client.get("/api/v1/campaigns").get_json()["total"] == 0


def test_form_add_row_without_javascript(client: FlaskClient) -> None:
    response = client.post("/campaigns/new", data=form_data(add_row="metrics"))
    assert response.status_code == 200
    page = text(response)
    # The typed row, the requested empty row, and the usual trailing blank row.
    assert 'name="metrics-2-name"' in page
    assert 'name="metrics-3-name"' not in page
    assert client.get("/api/v1/campaigns").get_json()["total"] == 0


def test_form_drops_rows_marked_for_deletion(client: FlaskClient) -> None:
    data = form_data(**{"metrics-1-name": "GMV", "metrics-1-actual": "10", "metrics-0-delete": "1"})
    client.post("/campaigns/new", data=data)
    metrics = client.get("/api/v1/campaigns").get_json()["items"][0]["metrics"]
    assert [m["name"] for m in metrics] == ["GMV"]


def test_edit_shows_stored_values_and_saves(client: FlaskClient) -> None:
    campaign_id = create(client)
    page = text(client.get(f"/campaigns/{campaign_id}/edit"))
    assert 'value="沉睡用户、价格敏感用户"' in page
    assert 'value="1130.5"' in page
    response = client.post(
        f"/campaigns/{campaign_id}/edit", data=form_data(version="1", title="改名了")
    )
    assert response.status_code == 302
    assert client.get(f"/api/v1/campaigns/{campaign_id}").get_json()["title"] == "改名了"


def test_edit_conflict_keeps_input_and_warns(client: FlaskClient) -> None:
    campaign_id = create(client)
    client.put(
        f"/api/v1/campaigns/{campaign_id}", json=campaign_payload(title="别人改的", version=1)
    )
    response = client.post(
        f"/campaigns/{campaign_id}/edit", data=form_data(version="1", title="我改的")
    )
    assert response.status_code == 409
    page = text(response)
    assert "改到第 2 版，你的修改尚未保存" in page
    assert "别人改的" in page.split('class="card conflict-panel"')[1]  # what the other one changed
    assert 'value="我改的"' in page
    # A plain 保存 again is refused again; only the explicit overwrite names version 2.
    assert 'name="version" value="1"' in page
    assert 'name="overwrite" value="2"' in page
    assert client.get(f"/api/v1/campaigns/{campaign_id}").get_json()["title"] == "别人改的"


def test_delete_and_restore(client: FlaskClient) -> None:
    campaign_id = create(client)
    assert client.post(f"/campaigns/{campaign_id}/delete").status_code == 302
    trashed = client.get(f"/campaigns/{campaign_id}")
    assert (
        trashed.status_code == 410
    )  # its link says 已移入回收站 (tests/campaigns/test_trashed_pages.py)
    assert "已移入回收站" in text(trashed)
    assert "双十一沉睡会员召回" in text(client.get("/trash"))
    assert client.post(f"/trash/{campaign_id}/restore").status_code == 302
    assert client.get(f"/campaigns/{campaign_id}").status_code == 200
    assert client.post(f"/trash/{campaign_id}/restore").status_code == 404


def test_unknown_page_is_a_friendly_404(client: FlaskClient) -> None:
    response = client.get("/campaigns/12345")
    assert response.status_code == 404
    assert "找不到该资源" in text(response)


def test_forms_require_a_csrf_token(tmp_path: Any) -> None:
    from tests.conftest import make_app

    app = make_app(tmp_path, None, WTF_CSRF_ENABLED=True)
    client = app.test_client()
    assert client.post("/campaigns/new", data=form_data()).status_code == 400
    page = text(client.get("/campaigns/new"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = client.post("/campaigns/new", data=form_data(csrf_token=token[1]))
    assert response.status_code == 302
