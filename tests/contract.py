"""Every API response the tests produce, checked against the generated OpenAPI document.

``record`` runs after each request of every test app (tests/conftest.py ``make_app``) and keeps
the answers of /api/v1 routes; after each test, ``violations`` checks each one: its status is
documented for that operation, and a JSON body matches the documented schema with additional
properties forbidden (an answer may not carry a field the document does not declare).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from kb.api.openapi import build_document, documented
from kb.api.operation import operation_of

STRICT = "tests.contract.strict_document"


@dataclass(frozen=True)
class Answer:
    """One API response as a test saw it."""

    app: Flask
    method: str
    rule: str
    status: int
    is_json: bool
    body: Any


RECORDED: list[Answer] = []


def record(response: Response) -> Response:
    """Keep the answer of an /api/v1 route (an ``after_request`` hook of test apps)."""
    rule = request.url_rule
    view = current_app.view_functions.get(request.endpoint or "")
    # A route a test added without a declaration is outside the contract (and fails the
    # document's build, which tests/test_api_contract.py checks).
    # OPTIONS is Flask's own answer, not an operation of ours.
    if request.method == "OPTIONS":
        return response
    if rule is not None and documented(rule.rule) and operation_of(view) is not None:
        # JSON answers are never streamed, so reading one here leaves it intact.
        is_json = response.mimetype == "application/json"
        RECORDED.append(
            Answer(
                app=current_app._get_current_object(),  # type: ignore[attr-defined]
                method="GET" if request.method == "HEAD" else request.method,
                rule=rule.rule,
                status=response.status_code,
                is_json=is_json,
                body=response.get_json(silent=True) if is_json else None,
            )
        )
    return response


def strict(node: Any) -> Any:
    """Return a copy of a schema where every object with properties forbids others."""
    if isinstance(node, dict):
        copied = {key: strict(value) for key, value in node.items()}
        if "properties" in copied and "additionalProperties" not in copied:
            copied["additionalProperties"] = False
        return copied
    if isinstance(node, list):
        return [strict(value) for value in node]
    return node


def _document(app: Flask) -> dict[str, Any]:
    document: dict[str, Any] | None = app.extensions.get(STRICT)
    if document is None:
        document = app.extensions[STRICT] = strict(build_document(app, declared_only=True))
    return document


def _path(rule: str) -> str:
    from kb.api.openapi import _PARAMETER

    return _PARAMETER.sub(lambda m: "{" + m.group(2) + "}", rule)


def violations(answer: Answer) -> list[str]:
    """Return what is wrong with one answer (nothing: it matches the document)."""
    document = _document(answer.app)
    where = f"{answer.method} {answer.rule} -> {answer.status}"
    operation = document["paths"].get(_path(answer.rule), {}).get(answer.method.lower())
    if operation is None:
        return [f"{where}: no such operation in the document"]
    documented = operation["responses"].get(str(answer.status))
    if documented is None:
        return [f"{where}: status not documented ({sorted(operation['responses'])})"]
    content = documented.get("content", {})
    if not answer.is_json:
        return []
    if "application/json" not in content:
        return [f"{where}: answered JSON, the document declares {sorted(content) or 'no body'}"]
    schema = {**content["application/json"]["schema"], "components": document["components"]}
    # jsonschema_rs: the validator schemathesis itself uses (tests/test_api_fuzz.py).
    validator = jsonschema_rs.Draft202012Validator(schema)
    return [
        f"{where}: {'/'.join(map(str, error.instance_path)) or '(body)'}: {error.message}"
        for error in validator.iter_errors(answer.body)
    ]


def check_recorded() -> list[str]:
    """Check and forget every answer recorded since the last call."""
    found = [problem for answer in RECORDED for problem in violations(answer)]
    RECORDED.clear()
    return found
