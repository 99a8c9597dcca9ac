"""A trashed campaign's history: editors and admins read it (to restore), viewers get a 404."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import campaign_payload


def test_viewers_do_not_read_the_history_of_a_trashed_campaign(
    app: Flask, client: FlaskClient
) -> None:
    campaign = client.post("/api/v1/campaigns", json=campaign_payload(title="已删活动")).get_json()
    viewer, editor = app.test_client(role="viewer"), app.test_client(role="editor")
    paths = (
        f"/api/v1/campaigns/{campaign['id']}/versions",
        f"/api/v1/campaigns/{campaign['id']}/versions/1",
        f"/campaigns/{campaign['id']}/history",
        f"/campaigns/{campaign['id']}/history/1",
    )
    assert [viewer.get(path).status_code for path in paths] == [200] * 4
    assert client.delete(f"/api/v1/campaigns/{campaign['id']}").status_code == 204

    for path in paths:
        answer = viewer.get(path)
        assert answer.status_code == 404, path
        text = answer.get_data(as_text=True)
        assert "已删活动" not in text, path
        if path.startswith("/api/"):
            assert answer.get_json()["error"]["message"] == "找不到该活动"
        else:
            assert "找不到该活动" in text
        assert editor.get(path).status_code == 200, path
        assert client.get(path).status_code == 200, path
