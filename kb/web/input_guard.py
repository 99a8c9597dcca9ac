"""Refuse input no view can store or parse, once for every route, before any view runs.

Two kinds of request used to end in a 500: a NUL character in a form field, a query parameter or
a JSON string (PostgreSQL text cannot hold it; SQLite can, so the two databases disagreed), and
JSON nested so deeply that parsing it raises ``RecursionError`` (not a ``ValueError``). Both now
get a 4xx that says what is wrong: the JSON error shape under ``/api/``, the error page elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, render_template, request

from kb.errors import ApiError, api_error_response

NUL_MESSAGE = "含有空字符（NUL，\\x00），请删除后重试"
NESTING_MESSAGE = "JSON 嵌套过深，无法读取"


def init_app(app: Flask) -> None:
    """Check every request's query, form and JSON body before its view runs."""
    app.before_request(_refuse_unsafe_input)


def _refuse_unsafe_input() -> tuple[Response | str, int] | None:
    fields = [name for name, value in request.args.items(multi=True) if "\x00" in value]
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            fields += [name for name, value in request.form.items(multi=True) if "\x00" in value]
        elif request.is_json:
            try:
                body = request.get_json(silent=True)
            except RecursionError:
                return _refuse(400, NESTING_MESSAGE, {}, code="malformed_json")
            fields += list(_nul_paths(body))
    if not fields:
        return None
    return _refuse(422, "输入有误：" + NUL_MESSAGE, dict.fromkeys(fields, NUL_MESSAGE))


def _nul_paths(value: Any) -> Iterator[str]:
    """Yield the dotted path of every string holding NUL (iteratively: no recursion limit)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                yield path or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{path}.{key}" if path else str(key)
                if "\x00" in str(key):
                    yield name
                stack.append((name, child))
        elif isinstance(item, list):
            stack.extend((f"{path}.{i}" if path else str(i), child) for i, child in enumerate(item))


def _refuse(
    status: int, message: str, fields: dict[str, str], *, code: str | None = None
) -> tuple[Response | str, int]:
    if request.path.startswith("/api/"):
        extra: dict[str, Any] = {"fields": fields} if fields else {}
        return api_error_response(ApiError(status, message, code=code, **extra))
    return render_template("error.html", status=status, message=message), status
