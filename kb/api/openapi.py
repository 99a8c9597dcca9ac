"""The OpenAPI 3.1 document of the JSON API, generated from the app itself.

Each route under /api/v1, and the probes in ``ROOT_OPERATIONS``, contributes one operation: its path and path parameters from the URL
rule, what it takes and answers from its ``@operation`` (kb/api/operation.py), who may call it
from its ``@requires`` (kb/access.py). A route without ``@operation`` makes the build fail with
an error naming it, so nothing reaches the API undocumented. The schemas are the pydantic models
the views validate and answer with: the document cannot drift from the code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from flask import Flask
from pydantic import BaseModel, TypeAdapter
from werkzeug.routing import Rule

from kb.access import REQUIRED_ROLE, Access, access_of
from kb.accounts.services import ROLE_LABELS
from kb.api.operation import Operation, operation_of
from kb.database import MAX_ID

PREFIX = "/api/v1/"
# Routes outside /api/v1 that belong to the document all the same: the health and readiness
# probes (kb/ops/views.py), which proxies and orchestrators expect at the root.
ROOT_OPERATIONS = frozenset({"/healthz", "/readyz"})
REF = "#/components/schemas/{model}"
# Ids in paths: positive and within what the database holds (a larger one is no route: 404).
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_PARAMETER = re.compile(r"<(?:([a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")
_CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": ID_SCHEMA,
    "default": {"type": "string"},
    "string": {"type": "string"},
}


class UndeclaredOperationError(LookupError):
    """An API route without ``@operation``: the document cannot describe it."""


class ErrorDetail(BaseModel):
    """What went wrong: a code, a message, and for validation errors one message per field."""

    code: str
    message: str
    fields: dict[str, str] | None = None
    current_version: int | None = None


class Error(BaseModel):
    """The one error shape of the API."""

    error: ErrorDetail


_ROLE_NOTES: dict[str | None, str] = {
    None: "公开，无需令牌。",
    "viewer": (
        "需要查看者令牌（查看者、编辑者、管理员均可）；读取也接受已登录的浏览器会话，"
        "开启 KB_PUBLIC_READ 时无需登录。"
    ),
    "editor": "需要编辑者令牌（编辑者或管理员）；通过 API 写入只认令牌，不认浏览器会话。",
    "admin": "需要管理员令牌。",
}
_UNAUTHORIZED = {
    "viewer": "缺少令牌（且未登录）、令牌无效或已被吊销",
    "editor": "缺少令牌、令牌无效或已被吊销；只有浏览器会话时也是 401（写入须用令牌）",
    "admin": "缺少令牌、令牌无效或已被吊销；只有浏览器会话时也是 401（写入须用令牌）",
}
_BEARER = (
    "API 令牌：Authorization: Bearer <令牌>（管理员在“令牌”页面或用 "
    "flask tokens create 创建）。缺少或无效的令牌 401，角色不够 403。"
)


def build_document(app: Flask, *, declared_only: bool = False) -> dict[str, Any]:
    """Return the OpenAPI document of ``app``'s API (cached on the app: it changes with code only).

    Raises UndeclaredOperationError naming the first /api/v1 route without ``@operation``,
    unless ``declared_only`` (then such routes are left out, for tests that add routes).
    """
    key = "kb.openapi.declared" if declared_only else "kb.openapi"
    cached: dict[str, Any] | None = app.extensions.get(key)
    if cached is None:
        cached = app.extensions[key] = _build(app, declared_only=declared_only)
    return cached


def api_operations(
    app: Flask, *, declared_only: bool = False
) -> Iterator[tuple[Rule, str, Operation]]:
    """Yield every API route and method with its declared operation (or fail naming it)."""
    for rule in app.url_map.iter_rules():
        if not documented(rule.rule):
            continue
        declared = operation_of(app.view_functions[rule.endpoint])
        if declared is None and declared_only:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if declared is None:
                raise UndeclaredOperationError(
                    f"{method} {rule.rule} ({rule.endpoint}) has no @operation: declare what it "
                    "takes and answers (kb/api/operation.py) so that the API document describes it"
                )
            yield rule, method, declared


def documented(rule: str) -> bool:
    """Say whether the route ``rule`` (its URL pattern) is part of the API document."""
    return rule.startswith(PREFIX) or rule in ROOT_OPERATIONS


def _build(app: Flask, *, declared_only: bool) -> dict[str, Any]:
    found = list(api_operations(app, declared_only=declared_only))
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for rule, method, declared in found:
        path = _PARAMETER.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        access = access_of(app, rule.endpoint)
        item = paths.setdefault(path, {})
        item[method.lower()] = _operation(rule, declared, access, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Campaign KB API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas.resolve(),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": _BEARER}
            },
        },
        "security": [{"bearerAuth": []}],
    }


class _Schemas:
    """The component schemas: each type referenced by a placeholder, resolved in one pass."""

    def __init__(self) -> None:
        self._wanted: dict[tuple[int, str], tuple[Any, str]] = {}
        self._placeholders: list[tuple[dict[str, Any], tuple[int, str]]] = []

    def ref(self, tp: Any, mode: str) -> dict[str, Any]:
        """Return a schema node for ``tp`` (filled in by :meth:`resolve`)."""
        key = (id(tp), mode)
        self._wanted.setdefault(key, (tp, mode))
        node: dict[str, Any] = {}
        self._placeholders.append((node, key))
        return node

    def resolve(self) -> dict[str, Any]:
        """Fill in every node handed out and return the component schemas they refer to."""
        top, definitions = TypeAdapter.json_schemas(
            [(key, mode, TypeAdapter(tp)) for key, (tp, mode) in self._wanted.items()],  # type: ignore[misc]
            ref_template=REF,
        )
        for node, key in self._placeholders:
            node.update(top[(key, key[1])])  # type: ignore[index]
        return dict(sorted(definitions.get("$defs", {}).items()))


def _operation(
    rule: Rule, declared: Operation, access: Access, schemas: _Schemas
) -> dict[str, Any]:
    role = None if access is Access.PUBLIC else REQUIRED_ROLE[access]
    note = _ROLE_NOTES[role]
    spec: dict[str, Any] = {
        "summary": declared.summary,
        "operationId": declared.operation_id,
        "description": f"{declared.description}\n\n{note}" if declared.description else note,
        "x-required-role": role,
    }
    parameters = _path_parameters(rule, declared) + _query_parameters(declared)
    if parameters:
        spec["parameters"] = parameters
    if declared.body:
        spec["requestBody"] = {
            "required": declared.body_required,
            "content": {
                media: {"schema": schemas.ref(tp, "validation")}
                for media, tp in declared.body.items()
            },
        }
    spec["responses"] = _responses(
        declared, role, schemas, rate_limited=rule.rule.startswith(PREFIX)
    )
    if role is None:
        spec["security"] = []
    return spec


def _responses(
    declared: Operation, role: str | None, schemas: _Schemas, *, rate_limited: bool
) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": declared.returns}
    if declared.headers:
        answer["headers"] = {name: {"schema": {"type": "string"}} for name in declared.headers}
    if declared.files:
        binary = {"type": "string", "format": "binary"}
        answer["content"] = {media: {"schema": binary} for media in declared.files}
    elif declared.response is not None:
        answer["content"] = {
            "application/json": {"schema": schemas.ref(declared.response, "serialization")}
        }
    error = {"application/json": {"schema": schemas.ref(Error, "serialization")}}
    responses: dict[str, Any] = {str(declared.status): answer}
    for status in declared.errors:
        responses[str(status)] = {"description": "错误", "content": error}
    for status, (model, description) in declared.answers.items():
        responses[str(status)] = {
            "description": description,
            "content": {"application/json": {"schema": schemas.ref(model, "serialization")}},
        }
    # The rate limit counts every request to /api/, this document's included.
    if rate_limited:
        responses["429"] = {
            "description": "请求过于频繁（KB_RATELIMIT_API）",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": error,
        }
        # Any API request may write (a token's last use, at most once a minute), and a write
        # that waits past KB_SQLITE_BUSY_TIMEOUT_S for SQLite's one writer is answered 503.
        responses["503"] = {
            "description": "数据库正忙，请稍后重试（未保存任何改动）",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": error,
        }
    if role is not None:
        responses["401"] = {
            "description": _UNAUTHORIZED[role],
            "headers": {
                "WWW-Authenticate": {
                    "required": True,
                    "schema": {"type": "string"},
                    "description": 'Bearer realm="campaign-kb"',
                }
            },
            "content": error,
        }
    if role in ("editor", "admin"):
        responses["403"] = {
            "description": f"令牌的角色低于{ROLE_LABELS[role]}",
            "content": error,
        }
    return dict(sorted(responses.items()))


def _path_parameters(rule: Rule, declared: Operation) -> list[dict[str, Any]]:
    declared_schemas = (
        declared.path.model_json_schema(ref_template=REF)["properties"] if declared.path else {}
    )
    parameters = []
    for match in _PARAMETER.finditer(rule.rule):
        converter, name = match.group(1) or "default", match.group(2)
        schema = declared_schemas.get(name) or _CONVERTER_SCHEMAS.get(converter)
        if schema is None:
            raise UndeclaredOperationError(
                f"{rule.rule}: declare the schema of <{converter}:{name}> with @operation(path=...)"
            )
        schema = {k: v for k, v in schema.items() if k != "title"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _query_parameters(declared: Operation) -> list[dict[str, Any]]:
    if declared.query is None:
        return []
    document = declared.query.model_json_schema(ref_template=REF)
    if "$defs" in document:
        # Query parameters are flat: a nested model cannot be a parameter.
        raise TypeError(f"{declared.query.__name__}: query models hold plain fields only")
    required = set(document.get("required", ()))
    parameters = []
    for name, schema in document["properties"].items():
        schema = _not_null(schema)
        description = schema.pop("description", None)
        parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
        if description:
            parameter["description"] = description
        if name in required:
            parameter["required"] = True
        parameters.append(parameter)
    return parameters


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a parameter's schema without ``null`` (a query string holds text or nothing)."""
    schema = {k: v for k, v in schema.items() if k != "title"}
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [option for option in options if option != {"type": "null"}]
        if len(kept) == 1:
            del schema["anyOf"]
            schema = {**kept[0], **schema}
        else:
            schema["anyOf"] = kept
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema
