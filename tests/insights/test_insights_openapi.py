"""The portfolio, lessons, playbook and signal endpoints in the generated OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from kb.api.openapi import build_document

INSIGHTS_PATHS = {
    "/api/v1/portfolio",
    "/api/v1/lessons",
    "/api/v1/playbooks",
    "/api/v1/playbooks/{playbook_id}",
    "/api/v1/campaigns/{campaign_id}/signals",
}
INSIGHTS_VIEWS = "kb.insights.api"


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(value) for value in node))
    return set()


def test_insights_paths_and_models_resolve_in_the_document(app: Flask) -> None:
    document = build_document(app)
    assert set(document["paths"]) >= INSIGHTS_PATHS
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    portfolio = schemas["PortfolioOut"]["properties"]
    assert {"campaigns", "crowding", "goals", "total", "uncovered_segments"} <= set(portfolio)
    lessons = document["paths"]["/api/v1/lessons"]["get"]
    assert {p["name"] for p in lessons["parameters"]} == {"q", "theme", "kind", "limit", "offset"}
    assert "422" in lessons["responses"]
    portfolio_params = document["paths"]["/api/v1/portfolio"]["get"]["parameters"]
    described = {p["name"]: p.get("description", "") for p in portfolio_params}
    assert "缺省为去年 1 月 1 日" in described["date_from"]


def test_operation_ids_are_unique(app: Flask) -> None:
    operations = [
        op["operationId"]
        for item in build_document(app)["paths"].values()
        for key, op in item.items()
        if key != "parameters"
    ]
    assert len(operations) == len(set(operations))


def test_every_insights_route_is_documented(app: Flask) -> None:
    documented = {
        (path, method.upper())
        for path, item in build_document(app)["paths"].items()
        if path in INSIGHTS_PATHS
        for method in item
    }
    routes = {
        (rule.rule.replace("<int:", "{").replace(">", "}"), method)
        for rule in app.url_map.iter_rules()
        if app.view_functions[rule.endpoint].__module__ == INSIGHTS_VIEWS
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert routes == documented


def test_the_served_document_lists_the_portfolio_and_the_lessons_search(
    client: FlaskClient,
) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/portfolio" in document["paths"]
    assert "/api/v1/lessons" in document["paths"]
    assert "PortfolioOut" in document["components"]["schemas"]
