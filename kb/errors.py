"""Domain errors and their HTTP status; one JSON error shape for the API; one app-level handler.

A service raises a :class:`DomainError` subclass (not found, conflict, invalid input…); the one
handler registered here answers it as ``{"error": {...}}`` under /api/ and as the error page
elsewhere. Pages that want to show something else (a form with its errors) catch it first.
"""

from __future__ import annotations

import errno
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

from kb.validation import InvalidInputError

# The machine-readable code of each HTTP status the API answers with.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "busy",
}

MESSAGES = {
    400: "请求格式有误",
    401: "需要登录或 API 令牌",
    403: "没有权限",
    404: "找不到该资源",
    405: "该地址不支持此方法",
    409: "数据已被他人修改，请刷新后再试",
    413: "请求体过大",
    415: "请求体须为 JSON (Content-Type: application/json)",
    422: "输入有误，请检查各字段",
    429: "请求过于频繁",
    500: "服务器内部错误",
    503: "数据库正忙，请稍后重试（未保存任何改动）",
}

# Seconds a client is asked to wait when the database stayed locked past its busy timeout.
BUSY_RETRY_AFTER_S = 2
# Seconds a client is asked to wait when the disk is full (someone has to free space first).
DISK_FULL_RETRY_AFTER_S = 300
DISK_FULL_MESSAGE = "服务器磁盘空间已满，无法写入；请通知管理员清理磁盘后再试"
# OSError numbers of a full disk: no space left, and the quota of the service's user used up.
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DomainError(Exception):
    """A failure the client can act on: an HTTP status, a Chinese message and optional details.

    Subclasses set ``status`` and ``message`` once (the arguments are for logs and tracebacks);
    ``details()`` adds members to the JSON error (``current_version`` for a conflict).
    """

    status: int = 400
    message: str = ""

    @property
    def code(self) -> str:
        return CODES.get(self.status, "error")

    @property
    def public_message(self) -> str:
        return self.message or MESSAGES.get(self.status, "")

    def details(self) -> dict[str, Any]:
        """Return the extra members of the JSON error."""
        return {}


class ApiError(DomainError):
    """An error raised by the HTTP layer itself (415, a malformed body…), with its details."""

    def __init__(
        self, status: int, message: str | None = None, *, code: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message or MESSAGES.get(status, ""))
        self.status = status
        self.message = message or ""
        self._code = code
        self.extra = extra

    @property
    def code(self) -> str:
        return self._code or CODES.get(self.status, "error")

    def details(self) -> dict[str, Any]:
        return self.extra


class NotFoundError(DomainError):
    """Something asked for does not exist: 404."""

    status = 404


class ConflictError(DomainError):
    """Something changed since the client read it: 409 with the version it is at now."""

    status = 409

    def __init__(self, current_version: int) -> None:
        super().__init__(f"now at version {current_version}")
        self.current_version = current_version

    def details(self) -> dict[str, Any]:
        return {"current_version": self.current_version}


def json_body() -> Any:
    """Return the request's JSON body; raise 415 when it is not JSON, 400 when it is malformed."""
    if not request.is_json:
        raise ApiError(415)
    try:
        return request.get_json()
    except BadRequest:
        raise ApiError(400, "请求体不是合法的 JSON", code="malformed_json") from None


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Return the JSON error document: ``{"error": {"code", "message", ...extra}}``."""
    return {"error": {"code": code, "message": message, **extra}}


def api_error_response(error: DomainError) -> tuple[Response, int]:
    """Render a domain error as the JSON error shape."""
    body = error_body(error.code, error.public_message, **error.details())
    return jsonify(body), error.status


def invalid_input_response(exc: InvalidInputError) -> tuple[Response | str, int]:
    """Answer input that failed validation: 422 naming each bad field."""
    return _domain_error(ApiError(422, fields=exc.fields))


def init_app(app: Flask) -> None:
    """Answer errors as JSON under /api/ and as an HTML page elsewhere."""
    app.register_error_handler(DomainError, _domain_error)
    # kb.validation is a leaf (the importers use it too): its error is mapped here, not subclassed.
    app.register_error_handler(InvalidInputError, invalid_input_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _http_error)
    app.register_error_handler(OperationalError, _database_error)
    app.register_error_handler(DataError, _out_of_range)
    app.register_error_handler(OSError, _os_error)
    app.register_error_handler(OverflowError, _out_of_range)


def _database_error(exc: OperationalError) -> tuple[Response | str, int, dict[str, str]]:
    """A write that waited past SQLite's busy timeout, or a full disk: 503 and Retry-After."""
    # SQLITE_FULL reads "database or disk is full"; PostgreSQL's disk_full is SQLSTATE 53100.
    if "database or disk is full" in str(exc.orig) or getattr(exc.orig, "sqlstate", "") == "53100":
        return _disk_full(exc)
    if "database is locked" not in str(exc.orig):
        response, status = _http_error(InternalServerError(original_exception=exc))
        return response, status, {}
    current_app.logger.warning("database busy on %s: answered 503", request.path)
    headers = {"Retry-After": str(BUSY_RETRY_AFTER_S)}
    if _wants_json():
        response, status = api_error_response(ApiError(503))
        return response, status, headers
    page = render_template("error.html", status=503, message=MESSAGES[503])
    return page, 503, headers


def _os_error(exc: OSError) -> tuple[Response | str, int, dict[str, str]]:
    """A full disk while writing a file (index, upload, export): 503 and Retry-After.

    Any other OSError is raised again, to be the 500 it was (logged with its traceback).
    """
    if exc.errno not in _DISK_FULL_ERRNOS:
        raise exc
    return _disk_full(exc)


def _disk_full(exc: BaseException) -> tuple[Response | str, int, dict[str, str]]:
    current_app.logger.error("disk full on %s: answered 503", request.path, exc_info=exc)
    headers = {"Retry-After": str(DISK_FULL_RETRY_AFTER_S)}
    if _wants_json():
        response, status = api_error_response(ApiError(503, DISK_FULL_MESSAGE, code="disk_full"))
        return response, status, headers
    page = render_template("error.html", status=503, message=DISK_FULL_MESSAGE)
    return page, 503, headers


# A number past what the database holds reached a query: the message of the one who typed it.
OUT_OF_RANGE_MESSAGE = "数字超出范围：编号、版本或页码过大"


def _out_of_range(exc: DataError | OverflowError) -> tuple[Response | str, int]:
    """A number too large for the database (an id typed by hand): 422, not a 500.

    Inputs are bounded where they are read (kb.database.form_id, the ``int`` route converter,
    the schemas' MAX_ID); this is the net under them. PostgreSQL says NumericValueOutOfRange
    (SQLSTATE 22003), SQLite's driver raises OverflowError before the query is sent. Any other
    DataError or OverflowError is a fault of ours and stays a 500.
    """
    if isinstance(exc, DataError):
        out_of_range = getattr(exc.orig, "sqlstate", None) == "22003"
    else:
        out_of_range = "SQLite INTEGER" in str(exc)
    if not out_of_range:
        raise exc  # ours, not the input's: the 500 it was, logged with its traceback
    current_app.logger.warning("number out of range on %s: answered 422", request.path)
    return _domain_error(ApiError(422, OUT_OF_RANGE_MESSAGE, code="out_of_range"))


def _domain_error(exc: DomainError) -> tuple[Response | str, int]:
    if _wants_json():
        return api_error_response(exc)
    page = render_template("error.html", status=exc.status, message=exc.public_message)
    return page, exc.status


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _http_error(exc: HTTPException) -> tuple[Response | str, int]:
    status = exc.code or 500
    if status >= 500:
        # The traceback goes to the log; the client only learns that something failed.
        original = getattr(exc, "original_exception", None) or exc
        current_app.logger.error("unhandled error on %s", request.path, exc_info=original)
    if _wants_json():
        return api_error_response(ApiError(status))
    return render_template(
        "error.html", status=status, message=MESSAGES.get(status, "出错了")
    ), status
