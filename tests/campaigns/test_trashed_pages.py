"""A trashed campaign's link, the trash list and the audit log, as people read them (issue 16)."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import campaign_payload


def _trashed(client: FlaskClient, title: str = "夜宵节复盘") -> int:
    campaign = client.post("/api/v1/campaigns", json=campaign_payload(title=title)).get_json()
    assert client.delete(f"/api/v1/campaigns/{campaign['id']}").status_code == 204
    return int(campaign["id"])


def test_a_trashed_campaigns_link_says_so_and_offers_restore_to_editors(
    app: Flask, client: FlaskClient
) -> None:
    campaign_id = _trashed(client)
    editor, viewer = app.test_client(role="editor"), app.test_client(role="viewer")

    page = editor.get(f"/campaigns/{campaign_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 410
    assert "已移入回收站" in html
    assert "夜宵节复盘" in html
    assert re.search(
        r"已由 <strong>[^<]+</strong> 于 \d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d 移入回收站", html
    )
    assert f'action="/trash/{campaign_id}/restore"' in html
    assert ">恢复</button>" in html

    notice = viewer.get(f"/campaigns/{campaign_id}")
    text = notice.get_data(as_text=True)
    assert notice.status_code == 410
    assert "已移入回收站" in text
    assert "恢复</button>" not in text
    assert "夜宵节复盘" not in text  # viewers see only the notice, not the record

    restored = editor.post(f"/trash/{campaign_id}/restore")
    assert restored.status_code == 302
    assert editor.get(f"/campaigns/{campaign_id}").status_code == 200
    assert client.get("/campaigns/99999").status_code == 404  # never existed: a plain 404


def test_the_trash_says_who_deleted(app: Flask, client: FlaskClient) -> None:
    editor = app.test_client(role="editor")
    campaign = editor.post("/api/v1/campaigns", json=campaign_payload(title="拼团复盘")).get_json()
    assert editor.delete(f"/api/v1/campaigns/{campaign['id']}").status_code == 204
    html = client.get("/trash").get_data(as_text=True)
    assert "<th>移入者</th>" in html
    row = re.search(r"<tr>\s*<td><a [^>]*>拼团复盘</a></td>(.*?)</tr>", html, re.S)
    assert row, html
    who = re.findall(r"<td[^>]*>([^<]*)</td>", row[1])
    assert "test-editor" in who[1]  # the editor's name (or their token's), not a code


def test_the_audit_log_names_objects_in_chinese(app: Flask, client: FlaskClient) -> None:
    campaign_id = _trashed(client, "会员日复盘")
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "campaign:" not in html
    assert (
        f'<span class="muted">活动</span> <a href="/campaigns/{campaign_id}">#{campaign_id} 会员日复盘</a>'
        in html
    )
    assert "移入回收站" in html
