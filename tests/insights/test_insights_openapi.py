"""The portfolio, lessons, playbook and signal endpoints in the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from pydantic.json_schema import models_json_schema

from kb.api import openapi
from kb.insights import views as insights

REF = "#/components/schemas/{model}"


def merged_document() -> dict[str, Any]:
    """Merge the insights paths and models into the document the way kb.api.openapi is to."""
    document = json.loads(json.dumps(openapi.build_document()))
    _, definitions = models_json_schema(insights.openapi_models(), ref_template=REF)
    schemas = document["components"]["schemas"]
    clashes = set(definitions["$defs"]) & set(schemas)
    # Shared sub-models may appear in both; they must then be the very same schema.
    assert all(definitions["$defs"][name] == schemas[name] for name in clashes), clashes
    schemas.update(definitions["$defs"])
    document["paths"].update(insights.openapi_paths())
    return document


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(value) for value in node))
    return set()


def test_insights_paths_and_models_resolve_in_the_merged_document() -> None:
    document = merged_document()
    for path in (
        "/api/v1/portfolio",
        "/api/v1/lessons",
        "/api/v1/playbooks",
        "/api/v1/playbooks/{playbook_id}",
        "/api/v1/campaigns/{campaign_id}/signals",
    ):
        assert path in document["paths"]
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    portfolio = schemas["PortfolioOut"]["properties"]
    assert {"campaigns", "crowding", "goals", "total", "uncovered_segments"} <= set(portfolio)
    lessons = document["paths"]["/api/v1/lessons"]["get"]
    assert {p["name"] for p in lessons["parameters"]} == {"q", "theme", "kind", "limit", "offset"}
    assert "422" in lessons["responses"]


def test_operation_ids_are_unique() -> None:
    operations = [
        op["operationId"]
        for item in merged_document()["paths"].values()
        for key, op in item.items()
        if key != "parameters"
    ]
    assert len(operations) == len(set(operations))


def test_every_insights_route_is_documented(insights_client: FlaskClient) -> None:
    app = insights_client.application
    documented = {
        (path, method.upper())
        for path, item in insights.openapi_paths().items()
        for method in item
        if method != "parameters"
    }
    routes = {
        (rule.rule.replace("<int:", "{").replace(">", "}"), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("insights_api.")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert routes == documented


def test_the_served_document_lists_the_portfolio_and_the_lessons_search(
    insights_client: FlaskClient,
) -> None:
    document = insights_client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/portfolio" in document["paths"]
    assert "/api/v1/lessons" in document["paths"]
    assert "PortfolioOut" in document["components"]["schemas"]
