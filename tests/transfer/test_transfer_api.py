"""POST /api/v1/imports (a job: 202, then GET its Location) and the exports, one error shape."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kb.api.openapi import build_document
from kb.extensions import db
from kb.models import Campaign
from tests.factories import campaign_payload

Sample = Callable[[str], Path]
PostFile = Callable[..., TestResponse]


def count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Campaign.id))) or 0


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def report_of(client: FlaskClient, response: TestResponse) -> dict[str, Any]:
    """Follow a queued import to its job and return the report (tests run jobs inline)."""
    assert response.status_code == 202, response.get_data(as_text=True)
    location = response.headers["Location"]
    job = client.get(location).get_json()
    assert job == response.get_json()  # the same resource, ended: INDEX_SYNC runs it at once
    assert job["state"] == "done"
    report: dict[str, Any] = job["report"]
    assert job["progress"]["rows_read"] == sum(report["counts"].values())
    return report


def test_dry_run_of_an_uploaded_file(
    app: Flask, client: FlaskClient, sample: Sample, post_file: PostFile
) -> None:
    response = post_file(client, "/api/v1/imports", sample("campaigns.jsonl"), dry_run="true")
    body = report_of(client, response)
    assert count(app) == 0
    assert body["dry_run"] is True
    assert body["format"] == "jsonl"
    assert body["counts"] == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 2}
    assert [r["row"] for r in body["created"]] == [1, 3, 6]
    assert body["rejected"][1] == {
        "row": 5,
        "title": "双十一 生鲜年货囤货节",
        "external_id": "sx-2024-040",
        "fields": {
            "goal_type": "取值须为以下之一：拉新、促活、留存、召回、转化、GMV、品牌、裂变",
            "end_date": "结束日期不能早于开始日期",
        },
    }


def test_real_import_of_a_file_with_a_metrics_file(
    app: Flask, client: FlaskClient, sample: Sample
) -> None:
    with (
        sample("campaigns_main.csv").open("rb") as main,
        sample("campaigns_main_metrics.csv").open("rb") as extra,
    ):
        response = client.post(
            "/api/v1/imports",
            data={"file": (main, "main.csv"), "metrics": (extra, "metrics.csv")},
            content_type="multipart/form-data",
        )
    body = report_of(client, response)
    # The unreadable "abc" is left empty and named; its campaign is kept with its other values.
    assert body["counts"]["created"] == 2
    assert count(app) == 2
    assert body["created"][0]["id"] is not None
    assert body["rejected"] == []
    assert body["warnings"] == [
        "指标文件第 5 行 获客成本 实际值 “abc” 无法识别为数字，已留空",
        "指标文件第 6 行对应不到任何活动，已忽略",
    ]


def test_json_body(app: Flask, client: FlaskClient) -> None:
    records = [campaign_payload(external_id="j-1"), campaign_payload(external_id="j-2", title="")]
    body = report_of(
        client, client.post("/api/v1/imports", json={"campaigns": records, "dry_run": True})
    )
    assert body["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 1}
    assert body["rejected"][0]["fields"] == {"title": "必填"}
    assert count(app) == 0
    body = report_of(client, client.post("/api/v1/imports", json=records[:1]))
    assert body["counts"]["created"] == 1
    assert count(app) == 1
    body = report_of(client, client.post("/api/v1/imports?dry_run=1", json=records[:1]))
    assert body["counts"]["unchanged"] == 1


SURROGATE = "\ud800"  # valid JSON ("\\ud800"), no character: no UTF-8 encodes it


@pytest.mark.parametrize("field", ["title", "external_id", "summary"])
def test_a_lone_surrogate_refuses_its_row_alone(
    app: Flask, client: FlaskClient, field: str
) -> None:
    good = campaign_payload(external_id="good-1")
    bad = campaign_payload(**{"external_id": "bad-1", field: "坏行" + SURROGATE})
    as_file = json.dumps([good, bad]).encode()  # escaped: the file is valid UTF-8
    upload = client.post(
        "/api/v1/imports",
        data={"file": (io.BytesIO(as_file), "rows.json")},
        content_type="multipart/form-data",
    )
    for body in (
        report_of(client, upload),
        report_of(
            client, client.post("/api/v1/imports", data=as_file, content_type="application/json")
        ),
    ):
        assert body["counts"]["rejected"] == 1
        (rejected,) = body["rejected"]
        assert rejected["row"] == 2
        assert "孤立的 UTF-16 代理项" in rejected["fields"][field]
        assert SURROGATE not in json.dumps(rejected, ensure_ascii=False)  # shown as �
    assert count(app) == 1  # the good row, once: the second import found it unchanged


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "field"),
    [
        ({"data": "title,industry", "content_type": "text/csv"}, 415, "unsupported_media_type", None),
        ({"data": "{not json", "content_type": "application/json"}, 400, "malformed_json", None),
        ({"json": {"items": 3}}, 422, "validation_error", "campaigns"),
        ({"json": {"campaigns": [], "dry_run": "maybe"}}, 422, "validation_error", "dry_run"),
        ({"data": {}, "content_type": "multipart/form-data"}, 422, "validation_error", "file"),
        (
            {"data": {"file": (b"x", "a.csv"), "format": "pdf"}, "content_type": "multipart/form-data"},
            422, "validation_error", "format",
        ),
        (
            {"data": {"file": (b"PK\x03\x04junk", "a.xlsx")}, "content_type": "multipart/form-data"},
            422, "validation_error", "file",
        ),
        (
            {"data": {"file": (b"[{", "a.json")}, "content_type": "multipart/form-data"},
            422, "validation_error", "file",
        ),
    ],
)  # fmt: skip
def test_import_errors_use_the_error_shape(
    client: FlaskClient, kwargs: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    # Files are made per call: a parametrized BytesIO would be closed after its first use.
    data = kwargs.get("data")
    if isinstance(data, dict) and isinstance(data.get("file"), tuple):
        content, name = data["file"]
        kwargs = {**kwargs, "data": {**data, "file": (io.BytesIO(content), name)}}
    error = assert_error(client.post("/api/v1/imports", **kwargs), status, code)
    if field:
        assert set(error["fields"]) == {field}


def test_too_large_uploads_get_413(app: Flask, client: FlaskClient) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    data = {"file": (io.BytesIO(b"x" * 4096), "a.csv")}
    response = client.post("/api/v1/imports", data=data, content_type="multipart/form-data")
    assert_error(response, 413, "payload_too_large")


def test_list_export_for_other_systems(app: Flask, client: FlaskClient) -> None:
    client.post(
        "/api/v1/imports",
        json=[
            campaign_payload(external_id="x-1", goal_type="gmv"),
            campaign_payload(external_id="x-2", goal_type="brand"),
        ],
    )
    response = client.get("/api/v1/campaigns/export.jsonl?goal_type=gmv")
    lines = response.get_data(as_text=True).splitlines()
    assert response.mimetype == "application/x-ndjson"
    assert [json.loads(line)["external_id"] for line in lines] == ["x-1"]
    error = assert_error(
        client.get("/api/v1/campaigns/export.csv?date_from=soon"), 422, "validation_error"
    )
    assert set(error["fields"]) == {"date_from"}
    assert_error(client.get("/api/v1/campaigns/export.pdf"), 404, "not_found")


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_openapi_paths_describe_the_endpoints(app: Flask) -> None:
    document = build_document(app)
    paths = {
        path: item
        for path, item in document["paths"].items()
        if path in ("/api/v1/imports", "/api/v1/imports/{job_id}", "/api/v1/campaigns/export.{fmt}")
    }
    assert len(paths) == 3
    assert paths["/api/v1/imports"]["post"]["operationId"] == "importCampaigns"
    assert "202" in paths["/api/v1/imports"]["post"]["responses"]
    assert paths["/api/v1/imports/{job_id}"]["get"]["operationId"] == "getImport"
    export = paths["/api/v1/campaigns/export.{fmt}"]["get"]
    fmt = next(p for p in export["parameters"] if p["name"] == "fmt")
    assert fmt["schema"]["enum"] == ["csv", "xlsx", "jsonl"]
    components = document["components"]["schemas"]
    for ref in _refs(paths):
        assert ref.removeprefix("#/components/schemas/") in components, ref
    with app.test_request_context():
        rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert "/api/v1/imports" in rules
    assert "/api/v1/campaigns/export.<fmt>" in rules
