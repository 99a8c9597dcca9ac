"""Campaign history: every change kept with who and when, a diff per version, restore, purge."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.campaigns import history
from kb.extensions import db
from kb.models import AuditEvent, CampaignVersion
from tests.factories import campaign_payload


def _create(client: FlaskClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/campaigns", json=campaign_payload(**overrides))
    assert response.status_code == 201, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def _update(client: FlaskClient, campaign: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = {
        k: v
        for k, v in campaign.items()
        if k not in ("id", "created_at", "updated_at", "deleted_at", "index_seq", "indexed")
    }
    data["metrics"] = [
        {k: m[k] for k in ("name", "unit", "baseline", "target", "actual")} for m in data["metrics"]
    ]
    data.update(changes)
    response = client.put(f"/api/v1/campaigns/{campaign['id']}", json=data)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def test_every_change_keeps_a_version_with_who_and_what(app: Flask, client: FlaskClient) -> None:
    campaign = _create(client, title="双11 老客召回")
    editor = app.test_client(role="editor")
    updated = _update(editor, campaign, lessons="短信召回的 ROI 最高。\n社群转化偏低。")
    _update(editor, updated, title="双11 老客召回（复盘）")

    versions = client.get(f"/api/v1/campaigns/{campaign['id']}/versions").json["items"]  # type: ignore[index]
    assert [v["action"] for v in versions] == ["update", "update", "create"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["actor"] == "token:" + versions[0]["actor"].split(":", 1)[1]
    assert "test-editor" in versions[0]["actor"]
    assert "test-admin" in versions[2]["actor"]
    assert versions[0]["changed_fields"] == ["活动名称"]
    assert versions[1]["changed_fields"] == ["经验教训"]

    detail = client.get(f"/api/v1/campaigns/{campaign['id']}/versions/2").json
    assert detail is not None
    (change,) = detail["changes"]
    assert change["field"] == "lessons"
    assert {"op": "+", "text": "短信召回的 ROI 最高。"} in change["lines"]

    page = client.get(f"/campaigns/{campaign['id']}/history/3").get_data(as_text=True)
    assert '<del class="diff-line">双11 老客召回</del>' in page
    assert '<ins class="diff-line">双11 老客召回（复盘）</ins>' in page
    assert "test-editor" in page
    listing = client.get(f"/campaigns/{campaign['id']}/history").get_data(as_text=True)
    assert "第 3 版" in listing
    assert "经验教训" in listing


def test_restoring_a_version_makes_it_current_as_a_new_version(client: FlaskClient) -> None:
    campaign = _create(client, title="618 直播")
    changed = _update(client, campaign, title="618 直播 · 改坏了", budget_cny=1.0)
    stale = client.post(
        f"/api/v1/campaigns/{campaign['id']}/versions/1/restore", json={"version": 1}
    )
    assert stale.status_code == 409
    restored = client.post(
        f"/api/v1/campaigns/{campaign['id']}/versions/1/restore", json={"version": 2}
    ).json
    assert restored is not None
    assert restored["title"] == "618 直播"
    assert restored["budget_cny"] == campaign["budget_cny"]
    assert restored["version"] == changed["version"] + 1
    versions = client.get(f"/api/v1/campaigns/{campaign['id']}/versions").json["items"]  # type: ignore[index]
    assert versions[0]["action"] == "revert"
    assert versions[0]["note"] == "恢复到第 1 版"
    assert client.post(f"/api/v1/campaigns/{campaign['id']}/versions/99/restore").status_code == 404


def test_restore_a_version_from_the_page(client: FlaskClient) -> None:
    campaign = _create(client, title="会员日")
    _update(client, campaign, title="会员日 v2")
    response = client.post(
        f"/campaigns/{campaign['id']}/history/1/restore", data={"expected_version": "2"}
    )
    assert response.status_code == 302
    assert "会员日</h1>" in client.get(f"/campaigns/{campaign['id']}").get_data(as_text=True)


def test_a_campaign_from_before_history_gets_a_baseline(app: Flask, client: FlaskClient) -> None:
    campaign = _create(client, title="旧活动")
    with app.app_context():
        db.session.execute(db.delete(CampaignVersion))  # as if written before history existed
        db.session.commit()
    _update(client, campaign, title="旧活动（改）")
    versions = client.get(f"/api/v1/campaigns/{campaign['id']}/versions").json["items"]  # type: ignore[index]
    assert [(v["version"], v["action"]) for v in versions] == [(2, "update"), (1, "baseline")]
    assert versions[0]["changed_fields"] == ["活动名称"]


def test_trash_restore_and_purge(app: Flask, client: FlaskClient) -> None:
    campaign = _create(client, title="要删的活动")
    editor = app.test_client(role="editor")
    assert editor.delete(f"/api/v1/campaigns/{campaign['id']}").status_code == 204
    assert [c["id"] for c in client.get("/api/v1/trash").json["items"]] == [campaign["id"]]  # type: ignore[index]
    assert editor.post(f"/api/v1/trash/{campaign['id']}/restore").status_code == 200
    assert client.delete(f"/api/v1/trash/{campaign['id']}").status_code == 404  # not in trash
    editor.delete(f"/api/v1/campaigns/{campaign['id']}")

    assert editor.delete(f"/api/v1/trash/{campaign['id']}").status_code == 403
    assert editor.post(f"/trash/{campaign['id']}/purge").status_code == 403
    assert client.post(f"/trash/{campaign['id']}/purge").status_code == 302
    assert client.get(f"/api/v1/campaigns/{campaign['id']}").status_code == 404
    assert client.get("/api/v1/trash").json["total"] == 0  # type: ignore[index]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(CampaignVersion.id))) == 0
        actions = db.session.scalars(db.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert [a for a in actions if a.startswith("campaign.")] == [
        "campaign.create",
        "campaign.trash",
        "campaign.restore",
        "campaign.trash",
        "campaign.purge",
    ]
    history = client.get(f"/campaigns/{campaign['id']}/history")
    assert history.status_code == 404


def test_history_keeps_the_newest_versions_only(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "MAX_VERSIONS", 3)
    campaign = _create(client)
    for n in range(5):
        campaign = _update(client, campaign, goal=f"第 {n} 次修改")
    with app.app_context():
        kept = db.session.scalars(
            sa.select(CampaignVersion.version)
            .where(CampaignVersion.campaign_id == campaign["id"])
            .order_by(CampaignVersion.version)
        ).all()
    assert kept == [campaign["version"] - 2, campaign["version"] - 1, campaign["version"]]
    listed = client.get(f"/api/v1/campaigns/{campaign['id']}/versions").get_json()["items"]
    assert [v["version"] for v in listed] == kept[::-1]
