"""Log lines as text (the default) or one JSON object per line (``KB_LOG_FORMAT=json``).

JSON lines are for log collectors (Loki, Elasticsearch, a cloud's log service): each carries
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, inside a request its ``request_id``,
``method`` and ``path``, and the traceback of an exception as one string. Every request gets an
id, taken from the proxy's ``X-Request-Id`` when it sends a sane one, and answered in the same
header, so a proxy's access log and the app's lines can be matched.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from werkzeug.wrappers import Response

# Settings of this module, in the shape of kb.config.SETTINGS (documented in the README as KB_*).
SETTINGS: dict[str, tuple[Any, str]] = {
    "LOG_FORMAT": ("text", "Log line format: text, or json (one JSON object per line)."),
}
FORMATS = ("text", "json")
REQUEST_ID_HEADER = "X-Request-Id"
# What a proxy's id may look like to be reused: anything else (or nothing) gets a fresh one.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line (also usable from gunicorn's logconfig)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = g.get("kb_request_id")
            entry["method"] = request.method
            entry["path"] = request.path
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def init_app(app: Flask) -> None:
    """Give each request an id and, with ``LOG_FORMAT=json``, log JSON lines to stderr."""
    app.before_request(_assign_request_id)
    app.after_request(_answer_request_id)
    if app.config["LOG_FORMAT"] == "json":
        _log_json(app)


def _log_json(app: Flask) -> None:
    root = logging.getLogger()
    # One JSON handler per process, however many apps it creates (tests, the CLI).
    for handler in list(root.handlers):
        if isinstance(handler.formatter, JsonFormatter):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    if root.level == logging.WARNING:  # Python's untouched default: the app's INFO lines count
        root.setLevel(logging.INFO)
    # Flask's own text handler on the app's logger would print each line a second time.
    app.logger.removeHandler(default_handler)


def _assign_request_id() -> None:
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    g.kb_request_id = sent if _SANE_ID.fullmatch(sent) else uuid.uuid4().hex


def _answer_request_id(response: Response) -> Response:
    request_id = g.get("kb_request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
