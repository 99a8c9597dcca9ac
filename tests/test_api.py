"""The JSON API: round trip, filters, paging, versions, trash, and one error shape everywhere."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.openapi import CampaignList, CampaignOut, Error
from tests.factories import campaign_payload

SERVER_FIELDS = {"id", "version", "created_at", "updated_at", "deleted_at"}
METRIC_EXTRAS = {"catalog_key", "direction", "attainment_pct", "lift_pct", "hit"}


def create(client: FlaskClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/campaigns", json=campaign_payload(**overrides))
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_every_posted_field_comes_back_unchanged(client: FlaskClient) -> None:
    sent = campaign_payload()
    response = client.post("/api/v1/campaigns", json=sent)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/v1/campaigns/{response.get_json()['id']}"

    got = client.get(response.headers["Location"]).get_json()
    CampaignOut.model_validate(got)
    assert set(got) - set(sent) == SERVER_FIELDS
    for field, value in sent.items():
        if field == "metrics":
            stored = [{k: v for k, v in m.items() if k not in METRIC_EXTRAS} for m in got[field]]
            assert stored == value
        else:
            assert got[field] == value, field
    assert got["version"] == 1
    assert got["deleted_at"] is None


def test_metrics_carry_catalog_key_attainment_and_lift(client: FlaskClient) -> None:
    metrics = {m["name"]: m for m in create(client)["metrics"]}
    gmv, rate, cac, unknown = (metrics[n] for n in ("成交额", "转化率", "获客成本", "老客惊喜度"))
    assert (gmv["catalog_key"], gmv["attainment_pct"], gmv["lift_pct"], gmv["hit"]) == (
        "gmv", 113.1, 37.9, True,
    )  # fmt: skip
    assert (rate["catalog_key"], rate["attainment_pct"], rate["hit"]) == (
        "conversion_rate",
        80.0,
        False,
    )
    # Lower is better for CAC: 35 / 52 of target, and a rise from 40 to 52 is a 30 % worsening.
    assert (cac["catalog_key"], cac["direction"], cac["attainment_pct"], cac["lift_pct"]) == (
        "cac", "lower", 67.3, -30.0,
    )  # fmt: skip
    assert cac["hit"] is False
    # A name outside the catalog is kept as given, with nothing computed that could mislead.
    assert (unknown["catalog_key"], unknown["direction"], unknown["hit"]) == (None, None, None)


def test_put_replaces_the_campaign_and_bumps_the_version(client: FlaskClient) -> None:
    created = create(client)
    body = campaign_payload(title="改过的标题", metrics=[], version=1)
    response = client.put(f"/api/v1/campaigns/{created['id']}", json=body)
    assert response.status_code == 200
    updated = response.get_json()
    assert (updated["title"], updated["metrics"], updated["version"]) == ("改过的标题", [], 2)


def test_put_with_a_stale_version_is_a_conflict(client: FlaskClient) -> None:
    created = create(client)
    url = f"/api/v1/campaigns/{created['id']}"
    assert client.put(url, json=campaign_payload(version=1, title="第一次")).status_code == 200
    response = client.put(url, json=campaign_payload(version=1, title="基于旧版本"))
    assert response.status_code == 409
    assert response.get_json()["error"]["current_version"] == 2
    assert client.get(url).get_json()["title"] == "第一次"


def test_delete_moves_to_trash(client: FlaskClient) -> None:
    created = create(client)
    url = f"/api/v1/campaigns/{created['id']}"
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.get("/api/v1/campaigns").get_json()["total"] == 0


def test_external_id_is_unique(client: FlaskClient) -> None:
    create(client)
    response = client.post("/api/v1/campaigns", json=campaign_payload())
    assert response.status_code == 422
    assert "external_id" in response.get_json()["error"]["fields"]


def test_list_filters_and_pages(client: FlaskClient) -> None:
    create(client, external_id="a", industry="母婴", goal_type="gmv", status="completed",
           start_date="2023-06-01", end_date="2023-06-18")  # fmt: skip
    create(client, external_id="b", industry="母婴", goal_type="referral", status="running",
           start_date="2024-03-01", end_date="2024-03-31")  # fmt: skip
    create(client, external_id="c", industry="美妆", goal_type="gmv", status="planned",
           start_date="2025-01-01", end_date="2025-01-10")  # fmt: skip

    def ids(query: str) -> list[str]:
        body = client.get(f"/api/v1/campaigns?{query}").get_json()
        CampaignList.model_validate(body)
        return [item["external_id"] for item in body["items"]]

    assert ids("") == ["c", "b", "a"]  # newest first
    assert ids("industry=母婴") == ["b", "a"]
    assert ids("goal_type=gmv") == ["c", "a"]
    assert ids("status=running") == ["b"]
    assert ids("date_from=2024-03-15&date_to=2024-12-31") == ["b"]  # ran during the range
    assert ids("per_page=2&page=2") == ["a"]
    page = client.get("/api/v1/campaigns?per_page=2").get_json()
    assert (page["total"], page["pages"], page["per_page"]) == (3, 2, 2)


def test_per_page_is_capped(client: FlaskClient) -> None:
    assert client.get("/api/v1/campaigns?per_page=100000").get_json()["per_page"] == 100


def _raise_internal() -> None:
    raise RuntimeError("secret internal detail: password=hunter2")


@pytest.fixture
def error_client(app: Flask) -> FlaskClient:
    app.add_url_rule("/api/v1/_boom", "boom", _raise_internal)
    app.config["MAX_CONTENT_LENGTH"] = 4096
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as production would, not re-raise
    return app.test_client()


ERROR_CASES = [
    # (description, method, url, kwargs, status, code)
    ("malformed JSON", "post", "/api/v1/campaigns",
     {"data": "{not json", "content_type": "application/json"}, 400, "malformed_json"),
    ("not JSON", "post", "/api/v1/campaigns", {"data": "title=x"}, 415, "unsupported_media_type"),
    ("unknown campaign", "get", "/api/v1/campaigns/999", {}, 404, "not_found"),
    ("unknown route", "get", "/api/v1/nothing-here", {}, 404, "not_found"),
    ("wrong method", "patch", "/api/v1/campaigns", {}, 405, "method_not_allowed"),
    ("too large", "post", "/api/v1/campaigns",
     {"json": campaign_payload(summary="长" * 5000)}, 413, "payload_too_large"),
    ("invalid", "post", "/api/v1/campaigns",
     {"json": campaign_payload(end_date="2020-01-01", goal_type="viral")}, 422, "validation_error"),
    ("not an object", "post", "/api/v1/campaigns", {"json": [1, 2]}, 422, "validation_error"),
    ("bad filter", "get", "/api/v1/campaigns?page=zero", {}, 422, "validation_error"),
    ("internal", "get", "/api/v1/_boom", {}, 500, "internal_error"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "code"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_every_error_has_the_one_shape(
    error_client: FlaskClient, method: str, url: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    response = getattr(error_client, method)(url, **kwargs)
    assert response.status_code == status
    assert response.is_json
    body = response.get_json()
    Error.model_validate(body)
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "hunter2" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_conflict_has_the_one_shape(client: FlaskClient) -> None:
    created = create(client)
    url = f"/api/v1/campaigns/{created['id']}"
    client.put(url, json=campaign_payload(version=1))
    body = client.put(url, json=campaign_payload(version=1)).get_json()
    Error.model_validate(body)
    assert body["error"]["code"] == "conflict"


def test_validation_errors_name_each_field(client: FlaskClient) -> None:
    body = campaign_payload(
        title="",
        end_date="2020-01-01",
        goal_type="viral",
        budget_cny=-5,
        metrics=[{"name": "GMV", "target": "很多"}],
        rewards=[{"type": "满减券", "stackable": "maybe"}],
        color="red",
    )
    fields = client.post("/api/v1/campaigns", json=body).get_json()["error"]["fields"]
    assert set(fields) == {
        "title", "end_date", "goal_type", "budget_cny", "metrics.0.target",
        "rewards.0.stackable", "color",
    }  # fmt: skip
    assert fields["end_date"] == "结束日期不能早于开始日期"
    assert fields["title"] == "必填"


def test_openapi_describes_every_api_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:  # type: ignore[operator]
            assert (path, method.lower()) in documented
    schemas = document["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs <= set(schemas), refs - set(schemas)  # every reference resolves
