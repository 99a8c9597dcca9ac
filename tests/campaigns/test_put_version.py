"""A replacement must say which version it replaces: no silent overwrite of another client's edit."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import campaign_payload


def test_a_put_without_version_is_refused_and_changes_nothing(client: FlaskClient) -> None:
    created = client.post("/api/v1/campaigns", json=campaign_payload()).get_json()
    url = f"/api/v1/campaigns/{created['id']}"
    refused = client.put(url, json=campaign_payload(title="没带版本号的修改"))
    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"] == {"version": "必填"}
    assert client.get(url).get_json()["title"] == created["title"]
    accepted = client.put(url, json=campaign_payload(title="带版本号的修改", version=1))
    assert accepted.status_code == 200
    assert accepted.get_json()["version"] == 2
