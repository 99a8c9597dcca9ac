"""Playbooks: the API (CRUD, validation, versions), the pages, and matching drafts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.insights import playbooks
from kb.insights.schemas import PlaybookList, PlaybookOut
from tests.factories import campaign_payload


def create_campaign(app: Flask, **overrides: Any) -> int:
    with app.app_context():
        return services.create_campaign(validate_campaign(campaign_payload(**overrides))).id


def playbook_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "多券叠加必须有最低成交价护栏",
        "theme": "risk",
        "body": "## 做法\n- 任一 SKU 叠满后实付不得低于成本价 × 1.05\n- 新人红包接入设备指纹",
        "supporting_ids": [],
        "contradicting_ids": [],
    }
    body.update(overrides)
    return body


@pytest.fixture
def two_campaigns(insights_app: Flask) -> tuple[int, int]:
    return (
        create_campaign(insights_app, external_id="c1", goal_type="gmv"),
        create_campaign(insights_app, external_id="c2", goal_type="retention"),
    )


def test_create_read_list_update_delete(
    insights_client: FlaskClient, two_campaigns: tuple[int, int]
) -> None:
    first, second = two_campaigns
    sent = playbook_body(supporting_ids=[first, first], contradicting_ids=[second])
    created = insights_client.post("/api/v1/playbooks", json=sent)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    PlaybookOut.model_validate(body)
    assert created.headers["Location"] == f"/api/v1/playbooks/{body['id']}"
    assert body["supporting_ids"] == [first]  # listed twice, cited once
    assert body["contradicting_ids"] == [second]
    assert [c["id"] for c in body["supporting"]] == [first]
    assert body["supporting"][0]["key_metric"] == "成交额"
    assert body["supporting"][0]["hit"] is True
    assert body["theme_label"] == "风控"
    assert body["created_at"] == body["updated_at"]

    assert insights_client.get(created.headers["Location"]).get_json() == body
    listed = insights_client.get("/api/v1/playbooks?theme=risk").get_json()
    PlaybookList.model_validate(listed)
    assert [p["id"] for p in listed["items"]] == [body["id"]]
    assert insights_client.get("/api/v1/playbooks?theme=budget").get_json()["items"] == []

    changed = playbook_body(title="叠券护栏", supporting_ids=[second], version=body["version"])
    updated = insights_client.put(created.headers["Location"], json=changed)
    assert updated.status_code == 200, updated.get_json()
    assert updated.get_json()["version"] == body["version"] + 1
    assert updated.get_json()["supporting_ids"] == [second]
    assert updated.get_json()["contradicting_ids"] == []

    stale = insights_client.put(created.headers["Location"], json=changed)
    assert stale.status_code == 409
    assert stale.get_json()["error"] == {
        "code": "conflict",
        "message": "数据已被他人修改，请刷新后再试",
        "current_version": body["version"] + 1,
    }

    assert insights_client.delete(created.headers["Location"]).status_code == 204
    gone = insights_client.get(created.headers["Location"])
    assert gone.status_code == 404
    assert gone.get_json()["error"]["code"] == "not_found"
    assert insights_client.delete(created.headers["Location"]).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"title": "", "theme": None}, {"title", "theme"}),
        ({"theme": "marketing"}, {"theme"}),
        ({"supporting_ids": [0]}, {"supporting_ids.0"}),
        ({"supporting_ids": ["x"]}, {"supporting_ids.0"}),
        ({"supporting_ids": [9999]}, {"supporting_ids.0"}),  # no such campaign
        ({"contradicting_ids": [1, 9998]}, {"contradicting_ids.1"}),
        ({"supporting_ids": [1], "contradicting_ids": [1]}, {"contradicting_ids"}),
        ({"owner": "me"}, {"owner"}),
    ],
)
def test_invalid_playbooks_get_422_with_the_fields(
    insights_app: Flask, insights_client: FlaskClient, overrides: dict[str, Any], fields: set[str]
) -> None:
    create_campaign(insights_app, external_id="v1")
    response = insights_client.post("/api/v1/playbooks", json=playbook_body(**overrides))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == fields


def test_body_errors(insights_client: FlaskClient) -> None:
    not_json = insights_client.post("/api/v1/playbooks", data="title=x")
    assert not_json.status_code == 415
    assert not_json.get_json()["error"]["code"] == "unsupported_media_type"
    broken = insights_client.post(
        "/api/v1/playbooks", data="{", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.get_json()["error"]["code"] == "malformed_json"
    listed = insights_client.post("/api/v1/playbooks", json=[1])
    assert listed.status_code == 422


def test_trashed_citations_are_hidden_and_kept(
    insights_app: Flask, insights_client: FlaskClient, two_campaigns: tuple[int, int]
) -> None:
    first, second = two_campaigns
    body = insights_client.post(
        "/api/v1/playbooks", json=playbook_body(supporting_ids=[first, second])
    ).get_json()
    with insights_app.app_context():
        services.trash_campaign(second)
    shown = insights_client.get(f"/api/v1/playbooks/{body['id']}").get_json()
    assert [c["id"] for c in shown["supporting"]] == [first]
    # Saving again keeps citing the trashed campaign (it comes back when restored) ...
    again = playbook_body(supporting_ids=[first, second])
    assert insights_client.put(f"/api/v1/playbooks/{body['id']}", json=again).status_code == 200
    # ... but a new citation of a trashed campaign is refused.
    fresh = insights_client.post("/api/v1/playbooks", json=playbook_body(supporting_ids=[second]))
    assert fresh.status_code == 422
    with insights_app.app_context():
        services.restore_campaign(second)
    restored = insights_client.get(f"/api/v1/playbooks/{body['id']}").get_json()
    assert [c["id"] for c in restored["supporting"]] == [first, second]


def test_pages_create_show_edit_and_delete(
    insights_client: FlaskClient, two_campaigns: tuple[int, int]
) -> None:
    first, second = two_campaigns
    form = insights_client.get(f"/playbooks/new?theme=reward&supporting={first}")
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    assert f'name="supporting_ids" value="{first}"' in html
    assert '<option value="reward" selected>' in html

    bad = insights_client.post(
        "/playbooks/new",
        data={
            "title": "",
            "theme": "reward",
            "body": "正文保留",
            "supporting_ids": f"{first}、abc",
        },
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert re.findall(r'class="field-error"[^>]*>([^<]*)', html) == ["必填", "请输入整数"]
    assert "正文保留" in html
    assert f'value="{first}、abc"' in html

    saved = insights_client.post(
        "/playbooks/new",
        data={
            "title": "老客召回避开大促窗口",
            "theme": "timing",
            "body": "- 召回活动不要与双11 并行",
            "supporting_ids": f"#{first}",
            "contradicting_ids": str(second),
        },
    )
    assert saved.status_code == 302
    page = insights_client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "老客召回避开大促窗口" in page
    assert "<li>召回活动不要与双11 并行</li>" in page
    assert page.count(f'href="/campaigns/{first}"') == 1
    assert page.count(f'href="/campaigns/{second}"') == 1
    playbook_id = int(saved.headers["Location"].rsplit("/", 1)[1])

    edit = insights_client.get(f"/playbooks/{playbook_id}/edit").get_data(as_text=True)
    assert 'name="version" value="1"' in edit
    ok = insights_client.post(
        f"/playbooks/{playbook_id}/edit", data={"title": "改", "theme": "timing", "version": "1"}
    )
    assert ok.status_code == 302
    # A form still at version 1 (another editor's, opened before that save) is refused.
    # (Version 0 is no version at all since kb.database.form_version: 422, not a conflict.)
    stale = insights_client.post(
        f"/playbooks/{playbook_id}/edit",
        data={"title": "再改", "theme": "timing", "version": "1"},
    )
    assert stale.status_code == 409
    assert "已被他人修改" in stale.get_data(as_text=True)

    deleted = insights_client.post(f"/playbooks/{playbook_id}/delete")
    assert deleted.status_code == 302
    assert insights_client.get(f"/playbooks/{playbook_id}").status_code == 404
    assert insights_client.get("/playbooks/9999/edit").status_code == 404


def test_matching_playbooks_for_drafts(
    insights_app: Flask, insights_client: FlaskClient, two_campaigns: tuple[int, int]
) -> None:
    gmv_campaign, retention_campaign = two_campaigns

    def make(title: str, theme: str, supporting: list[int]) -> int:
        body = playbook_body(title=title, theme=theme, supporting_ids=supporting)
        created: int = insights_client.post("/api/v1/playbooks", json=body).get_json()["id"]
        return created

    risk = make("叠券要防羊毛党", "risk", [retention_campaign])
    budget_gmv = make("大促预算分批释放", "budget", [gmv_campaign])
    channel = make("企微社群承接要提前扩容", "channel", [])
    with insights_app.app_context():

        def match(text: str, goal: str | None) -> list[int]:
            return [p.id for p in playbooks.matching_playbooks(text, goal)]

        # Theme keywords in the draft (Traditional too), or a supporting campaign's goal type.
        assert match("双11 满减叠加，防止羊毛黨薅券", None) == [risk]
        assert match("会员日活动", "gmv") == [budget_gmv]
        # Both reasons beat one: the budget playbook matches by theme and by goal.
        assert match("预算有限，羊毛党风控要做好", "gmv") == [budget_gmv, risk]
        assert match("企业微信社群 + 直播", "brand") == [channel]
        assert match("", None) == []
        assert match("一次普通的活动", "referral") == []

        found = playbooks.matching_playbooks("企微社群", None)
        with insights_app.test_request_context():
            html = render_template_string(
                '{% include "insights/_playbooks.html" %}', playbooks=found
            )
            empty = render_template_string('{% include "insights/_playbooks.html" %}', playbooks=[])
    assert "相关打法" in html
    assert f'href="/playbooks/{channel}"' in html
    assert "渠道" in html
    assert empty.strip() == ""


def test_lessons_page_and_api_show_matching_playbooks(
    insights_client: FlaskClient, two_campaigns: tuple[int, int]
) -> None:
    first, _ = two_campaigns
    insights_client.post("/api/v1/playbooks", json=playbook_body(supporting_ids=[first]))
    found = insights_client.get("/api/v1/lessons?q=设备指纹").get_json()
    assert [p["title"] for p in found["playbooks"]] == ["多券叠加必须有最低成交价护栏"]
    other = insights_client.get("/api/v1/lessons?q=直播&theme=risk").get_json()
    assert other["playbooks"] == []
    html = insights_client.get("/lessons?theme=risk").get_data(as_text=True)
    assert "编辑整理的打法" in html
    assert "1 个活动支持" in html
