"""KB_LOG_FORMAT=json: one JSON object per log line, with the request's id and path inside one."""

from __future__ import annotations

import io
import json
import logging
import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from gunicorn.config import Config
from gunicorn.glogging import Logger

from kb.access import Access
from kb.config import SettingsError
from kb.logs import JsonFormatter
from tests.conftest import make_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, given back as it was (a JSON app adds its handler there)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def _capture(root: logging.Logger) -> io.StringIO:
    (handler,) = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    return stream


def _app_logging_in_a_view(tmp_path: Path) -> Flask:
    app = make_app(tmp_path, None, LOG_FORMAT="json")

    @app.get("/test-log")
    def test_log() -> str:
        logging.getLogger("kb.test").warning("导入 %d 行", 3)
        try:
            raise ValueError("坏了")
        except ValueError:
            logging.getLogger("kb.test").exception("失败")
        return "ok"

    test_log.kb_access = Access.PUBLIC  # type: ignore[attr-defined]
    return app


def test_json_lines_carry_the_request(tmp_path: Path, root_logger: logging.Logger) -> None:
    app = _app_logging_in_a_view(tmp_path)
    stream = _capture(root_logger)
    response = app.test_client(role=None).get("/test-log", headers={"X-Request-Id": "abc-123"})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "abc-123"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2  # one object per line, also for a traceback
    first, second = lines
    assert first["level"] == "WARNING"
    assert first["logger"] == "kb.test"
    assert first["message"] == "导入 3 行"
    assert first["request_id"] == "abc-123"
    assert first["method"] == "GET"
    assert first["path"] == "/test-log"
    assert first["time"].endswith("+00:00")
    assert "ValueError: 坏了" in second["exception"]


def test_outside_a_request_and_an_unusable_id(tmp_path: Path, root_logger: logging.Logger) -> None:
    app = make_app(tmp_path, None, LOG_FORMAT="json")
    stream = _capture(root_logger)
    logging.getLogger("kb.searching.indexer").info("索引完成")
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["message"] == "索引完成"
    assert line["level"] == "INFO"
    assert "request_id" not in line
    # A made-up id with spaces or markup is replaced, not repeated into logs and headers.
    answered = app.test_client(role=None).get("/healthz", headers={"X-Request-Id": "<x> y"})
    assert len(answered.headers["X-Request-Id"]) == 32


def test_text_stays_the_default(tmp_path: Path, root_logger: logging.Logger) -> None:
    app = make_app(tmp_path, None)
    assert app.config["LOG_FORMAT"] == "text"
    assert not any(isinstance(h.formatter, JsonFormatter) for h in root_logger.handlers)


def test_an_unknown_format_stops_the_app(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="KB_LOG_FORMAT=xml: 须为 text 或 json"):
        make_app(tmp_path, None, LOG_FORMAT="xml")


def test_gunicorn_logs_json_too(
    monkeypatch: pytest.MonkeyPatch, root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KB_LOG_FORMAT", "json")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    config = Config()
    config.set("logconfig_dict", conf["logconfig_dict"])
    error_log = logging.getLogger("gunicorn.error")
    saved = list(error_log.handlers)
    try:
        Logger(config).error("worker %s timed out", 7)  # gunicorn applies the dict here
        (line,) = capsys.readouterr().err.splitlines()
    finally:
        error_log.handlers[:] = saved
    entry = json.loads(line)
    assert (entry["logger"], entry["level"]) == ("gunicorn.error", "ERROR")
    assert entry["message"] == "worker 7 timed out"
