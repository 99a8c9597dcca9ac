"""Refuse input no view can store or parse, once for every route, before any view runs.

Two kinds of request used to end in a 500: a NUL character in a form field, a query parameter or
a JSON string (PostgreSQL text cannot hold it; SQLite can, so the two databases disagreed), and
JSON nested so deeply that parsing it raises ``RecursionError`` (not a ``ValueError``). Both now
get a 4xx that says what is wrong: the JSON error shape under ``/api/``, the error page elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, render_template, request

from kb.errors import ApiError, api_error_response

NUL_MESSAGE = "含有空字符（NUL，\\x00），请删除后重试"
NESTING_MESSAGE = "JSON 嵌套过深，无法读取"


def init_app(app: Flask) -> None:
    """Check every request's query, form and JSON body before its view runs."""
    app.wsgi_app = _Utf8Query(app.wsgi_app)  # type: ignore[method-assign]
    app.before_request(_refuse_unsafe_input)


# Characters a query string keeps as they are when its raw bytes are percent-encoded.
_QUERY_SAFE = "&=+%/?:@,;!$'()*~-._[]"


class _Utf8Query:
    """Read a query string sent as raw UTF-8 bytes as UTF-8, as browsers' percent-encoded ones are.

    Browsers percent-encode "?q=优品汇"; curl and many scripts send its bytes as they are. The
    server hands those bytes over as Latin-1 text (PEP 3333), which Flask then took for the
    characters ç\x94µ…: "?industry=电商" found nothing and "?q=优品汇" searched noise. The raw bytes
    are percent-encoded before Flask parses them, so both forms read alike.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        query = environ.get("QUERY_STRING", "")
        if not query.isascii():
            environ["QUERY_STRING"] = quote(_sent_bytes(query), safe=_QUERY_SAFE)
        return self.app(environ, start_response)


def _sent_bytes(query: str) -> bytes:
    """Return the bytes the client sent for a query string a WSGI server gave as text.

    gunicorn gives them as Latin-1 text, as PEP 3333 says; Werkzeug's development server
    (``flask run``) decodes them as Latin-1, encodes that as UTF-8 and decodes it as Latin-1
    again. Undone once, then once more when that yields UTF-8 bytes again.
    """
    raw = query.encode("latin-1", errors="replace")
    try:
        again = raw.decode("utf-8").encode("latin-1")
        again.decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return raw  # the bytes as sent (gunicorn), or no UTF-8 at all
    return again


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
