"""The API contract itself: the document is generated, complete, and strict about answers.

Every API answer of every test is checked against the document by tests/contract.py (hooked
into the test apps in tests/conftest.py); these tests check that the check can fail, and that
a route nobody declared stops the document from being built.
"""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask
from pydantic import ValidationError

from kb.api.openapi import UndeclaredOperationError, build_document
from kb.campaigns.serialize import MetricOut
from kb.drafts.forecast import MetricForecast
from tests import contract


def test_an_undeclared_api_route_fails_the_build_naming_it(app: Flask) -> None:
    app.add_url_rule("/api/v1/undeclared/<int:thing_id>", "undeclared", lambda thing_id: "")
    with pytest.raises(UndeclaredOperationError, match=r"GET /api/v1/undeclared/<int:thing_id>"):
        build_document(app)


def test_a_page_route_needs_no_declaration(app: Flask) -> None:
    app.add_url_rule("/somewhere-else", "somewhere_else", lambda: "")
    assert "/somewhere-else" not in build_document(app)["paths"]


def test_an_undeclared_field_in_an_answer_is_a_violation(app: Flask) -> None:
    answer = contract.Answer(
        app=app,
        method="GET",
        rule="/api/v1/campaigns/<int:campaign_id>/signals",
        status=200,
        is_json=True,
        body={"campaign_id": 1, "signals": [], "thresholds": {}, "surprise": True},
    )
    problems = contract.violations(answer)
    assert len(problems) == 1
    assert "surprise" in problems[0]


def test_an_undocumented_status_or_missing_field_is_a_violation(app: Flask) -> None:
    base = {"app": app, "method": "GET", "rule": "/api/v1/campaigns/<int:campaign_id>/signals"}
    teapot = contract.Answer(**base, status=418, is_json=True, body={})
    assert "status not documented" in contract.violations(teapot)[0]
    missing = contract.Answer(**base, status=200, is_json=True, body={"campaign_id": 1})
    assert any('"signals" is a required property' in p for p in contract.violations(missing))


def test_an_out_model_refuses_a_misspelt_field() -> None:
    with pytest.raises(ValidationError, match="attainment_pc"):
        MetricOut.model_validate(
            {
                "name": "ROI",
                "unit": "",
                "baseline": None,
                "target": 2.0,
                "actual": 2.5,
                "catalog_key": "roi",
                "direction": "higher",
                "attainment_pc": 125.0,
                "lift_pct": None,
                "hit": True,
                "key": False,
                "is_key": True,
            }
        )


def test_the_document_declares_what_search_and_forecasts_answer(app: Flask) -> None:
    schemas = build_document(app)["components"]["schemas"]
    assert "expanded_terms" in schemas["SearchResponseOut"]["properties"]
    forecast_fields = {f.name for f in dataclasses.fields(MetricForecast)}
    assert set(schemas["MetricForecast"]["properties"]) == forecast_fields
