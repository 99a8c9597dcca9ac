"""The JSON API: round trip, filters, paging, versions, trash, and one error shape everywhere."""

from __future__ import annotations

import json
import re
from typing import Any, get_args

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.access import REQUIRED_ROLE, Access, access_of
from kb.accounts.services import ROLE_LABELS
from kb.api.openapi import Error
from kb.campaigns import history
from kb.campaigns.api import CampaignWriteOut
from kb.campaigns.history import VersionAction, VersionDetailOut, VersionList
from kb.campaigns.serialize import CampaignList, CampaignOut
from tests.factories import campaign_payload

SERVER_FIELDS = {"id", "version", "created_at", "updated_at", "deleted_at"}
METRIC_EXTRAS = {"catalog_key", "direction", "attainment_pct", "lift_pct", "hit", "is_key"}


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
            # ``key``: not sent, so not chosen as the key metric (主要指标).
            assert stored == [{**m, "key": False} for m in value]
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


def _api_routes(app: Flask) -> dict[tuple[str, str], str]:
    """Return every (OpenAPI path, method) under /api/v1, and the probes, with its endpoint."""
    routes = {}
    for rule in app.url_map.iter_rules():
        # The health and readiness probes live at the root and are documented all the same.
        if not rule.rule.startswith("/api/v1/") and rule.rule not in ("/healthz", "/readyz"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:  # type: ignore[operator]
            routes[(path, method.lower())] = rule.endpoint
    return routes


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def test_openapi_describes_every_api_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    # Every route is documented, and every documented operation is a route.
    assert set(_operations(document)) == set(_api_routes(app))
    schemas = document["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs <= set(schemas), refs - set(schemas)  # every reference resolves
    operation_ids = [op["operationId"] for op in _operations(document).values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_openapi_declares_who_may_call_each_operation(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert document["security"] == [{"bearerAuth": []}]
    operations = _operations(document)
    for key, endpoint in _api_routes(app).items():
        operation = operations[key]
        access = access_of(app, endpoint)
        role = None if access is Access.PUBLIC else REQUIRED_ROLE[access]
        # The document says what the view's @requires says.
        assert operation["x-required-role"] == role, key
        responses = operation["responses"]
        # The rate limit covers all of /api/ (the probes at the root are outside it).
        assert ("429" in responses) == key[0].startswith("/api/"), key
        if role is None:
            assert operation["security"] == []
            assert "401" not in responses
            assert "403" not in responses
            continue
        assert "security" not in operation  # the document-wide bearer requirement applies
        assert f"需要{ROLE_LABELS[role]}令牌" in operation["description"], key
        assert responses["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        # A viewer token is the lowest there is: only operations above it can refuse one.
        assert ("403" in responses) == (role != "viewer"), key


def test_the_documented_401_and_403_are_what_the_api_answers(app: Flask) -> None:
    anonymous = app.test_client(role=None)
    viewer = app.test_client(role="viewer")
    editor = app.test_client(role="editor")
    campaign = create(app.test_client())
    response = anonymous.get("/api/v1/campaigns")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    Error.model_validate(response.get_json())
    bad_token = anonymous.get("/api/v1/campaigns", headers={"Authorization": "Bearer kbt_nope"})
    assert bad_token.status_code == 401
    assert bad_token.get_json()["error"]["code"] == "unauthorized"
    assert anonymous.get("/api/v1/openapi.json").status_code == 200  # public
    refused = viewer.put(f"/api/v1/campaigns/{campaign['id']}", json=campaign_payload())
    assert refused.status_code == 403
    assert Error.model_validate(refused.get_json()).error.code == "forbidden"
    assert viewer.get("/api/v1/trash").status_code == 403
    assert editor.delete(f"/api/v1/trash/{campaign['id']}").status_code == 403


def test_history_and_trash_answers_match_their_schemas(client: FlaskClient) -> None:
    campaign = create(client)
    changed = campaign_payload(title="改名后", version=1)
    assert client.put(f"/api/v1/campaigns/{campaign['id']}", json=changed).status_code == 200
    versions = client.get(f"/api/v1/campaigns/{campaign['id']}/versions")
    assert [v.version for v in VersionList.model_validate(versions.get_json()).items] == [2, 1]
    detail = client.get(f"/api/v1/campaigns/{campaign['id']}/versions/2").get_json()
    assert VersionDetailOut.model_validate(detail).changes[0].field == "title"
    restored = client.post(
        f"/api/v1/campaigns/{campaign['id']}/versions/1/restore", json={"version": 2}
    )
    # A restore is a write: it also says which change-feed entry to wait for.
    assert CampaignWriteOut.model_validate(restored.get_json()).version == 3
    assert client.delete(f"/api/v1/campaigns/{campaign['id']}").status_code == 204
    trash = CampaignList.model_validate(client.get("/api/v1/trash").get_json())
    assert [c.id for c in trash.items] == [campaign["id"]]
    back = client.post(f"/api/v1/trash/{campaign['id']}/restore")
    assert CampaignWriteOut.model_validate(back.get_json()).deleted_at is None


def test_version_actions_in_the_document_are_the_recorded_ones() -> None:
    assert set(get_args(VersionAction)) == set(history.ACTION_LABELS)


# Found by tests/test_api_fuzz.py -------------------------------------------------------------


@pytest.mark.parametrize("number", [2**31, 2**63, 10**30])
def test_ids_beyond_the_database_are_not_found_whatever_the_method(
    client: FlaskClient, number: int
) -> None:
    # They used to reach the query: an overflow (500) on SQLite and on PostgreSQL.
    for method, path in [
        ("GET", f"/api/v1/campaigns/{number}"),
        ("PUT", f"/api/v1/campaigns/{number}"),
        ("DELETE", f"/api/v1/campaigns/{number}"),
        ("GET", f"/api/v1/campaigns/1/versions/{number}"),
        ("DELETE", f"/api/v1/trash/{number}"),
        ("DELETE", f"/api/v1/playbooks/{number}"),
    ]:
        response = client.open(path, method=method, json=campaign_payload())
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"]["code"] == "not_found"
    feedback = {"draft_key": "k", "campaign_id": number}
    assert client.post("/api/v1/similar/feedback", json=feedback).status_code == 422
    playbook = {"title": "t", "theme": "ops", "supporting_ids": [number]}
    assert client.post("/api/v1/playbooks", json=playbook).status_code == 422


def test_an_overflowing_attainment_is_no_number_not_infinity(client: FlaskClient) -> None:
    metric = {
        "name": "成交额",
        "unit": "元",
        "target": 1e-300,
        "actual": 1.7e308,
        "baseline": 1e-300,
    }
    response = client.post(
        "/api/v1/campaigns", json=campaign_payload(metrics=[metric], external_id=None)
    )
    assert response.status_code == 201
    assert b"Infinity" not in response.data  # not JSON
    stored = response.get_json()["metrics"][0]
    assert stored["attainment_pct"] is None
    assert stored["lift_pct"] is None


@pytest.mark.parametrize(
    "query",
    ["date_to=0001-01-01", "date_from=9999-06-01", "date_from=0001-01-01&date_to=9999-12-31"],
)
def test_portfolio_periods_at_the_ends_of_the_calendar(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/v1/portfolio?{query}")
    assert response.status_code in (200, 422), response.get_json()  # never 500
    if "&" in query:
        assert response.get_json()["error"]["fields"]["date_to"] == "时间范围最长 60 个月"
