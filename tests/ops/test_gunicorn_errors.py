"""gunicorn's own answers (a request line or headers past its limits, a malformed request) are
the API's JSON error under /api/, and its HTML page elsewhere: a real gunicorn with
gunicorn.conf.py."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.live import gunicorn, wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    data_dir = tmp_path_factory.mktemp("gunicorn")
    env = {
        **os.environ,
        "KB_DATA_DIR": str(data_dir),
        "KB_EMBEDDING_MODELS": "fake",
        "KB_RATELIMIT_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("KB_DATABASE_URL", None)
    log_path = data_dir / "gunicorn.log"
    with gunicorn(env, log_path) as (process, port):

        def healthy() -> bool:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthz", timeout=5
                ) as answer:  # the local test server
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_until(healthy, timeout_s=120, what="gunicorn ready")
        yield port, log_path
    assert "Traceback" not in log_path.read_text(errors="replace")


def _exchange(port: int, raw: bytes, *, pause_s: float = 0) -> tuple[int, str, bytes]:
    """Send raw bytes (``pause_s`` after connecting); return status, Content-Type and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        time.sleep(pause_s)
        connection.sendall(raw)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), body


def _error(body: bytes) -> dict[str, str]:
    error: dict[str, str] = json.loads(body)["error"]
    return error


def test_a_10_kb_request_line_under_api_is_a_json_414(server: tuple[int, Path]) -> None:
    port, _ = server
    line = b"GET /api/v1/campaigns?q=" + b"a" * 10_000 + b" HTTP/1.1\r\n"
    status, content_type, body = _exchange(port, line + b"Host: kb\r\n\r\n")
    assert (status, content_type) == (414, "application/json")
    assert _error(body) == {
        "code": "uri_too_long",
        "message": "请求地址过长：请求行（方法、路径与查询参数）超过上限",
    }


def test_a_client_slow_to_send_its_request_line_gets_json_too(server: tuple[int, Path]) -> None:
    port, _ = server
    # The worker's thread takes the connection before any byte arrives: the path is read once
    # they do, not at the moment the connection was accepted.
    line = b"GET /api/v1/campaigns?q=" + b"a" * 10_000 + b" HTTP/1.1\r\n"
    status, content_type, body = _exchange(port, line + b"Host: kb\r\n\r\n", pause_s=0.5)
    assert (status, content_type) == (414, "application/json")
    assert _error(body)["code"] == "uri_too_long"


def test_the_same_line_for_a_page_keeps_gunicorns_page(server: tuple[int, Path]) -> None:
    port, _ = server
    line = b"GET /campaigns?q=" + b"a" * 10_000 + b" HTTP/1.1\r\n"
    status, content_type, _ = _exchange(port, line + b"Host: kb\r\n\r\n")
    assert (status, content_type) == (414, "text/html")


def test_too_many_or_too_long_header_fields_under_api_are_a_json_431(
    server: tuple[int, Path],
) -> None:
    port, _ = server
    many = b"".join(b"X-Field-%d: 1\r\n" % n for n in range(101))
    status, content_type, body = _exchange(
        port, b"GET /api/v1/campaigns HTTP/1.1\r\nHost: kb\r\n" + many + b"\r\n"
    )
    assert (status, content_type) == (431, "application/json")
    assert _error(body)["code"] == "header_fields_too_large"
    long_field = b"X-Long: " + b"b" * 9000 + b"\r\n"
    status, content_type, body = _exchange(
        port, b"GET /api/v1/campaigns HTTP/1.1\r\nHost: kb\r\n" + long_field + b"\r\n"
    )
    assert (status, content_type) == (431, "application/json")
    assert "请求头" in _error(body)["message"]


def test_a_malformed_request_under_api_is_a_json_400(server: tuple[int, Path]) -> None:
    port, _ = server
    status, content_type, body = _exchange(
        port, b"GET /api/v1/campaigns HTTP/1.1\r\nHost: kb\r\nBad Header\r\n\r\n"
    )
    assert (status, content_type) == (400, "application/json")
    assert _error(body)["code"] == "bad_request"


def test_requests_within_the_limits_reach_the_app(server: tuple[int, Path]) -> None:
    port, _ = server
    line = b"GET /api/v1/campaigns?q=" + b"a" * 8000 + b" HTTP/1.1\r\n"
    status, content_type, body = _exchange(port, line + b"Host: kb\r\nConnection: close\r\n\r\n")
    assert status == 401  # the app's answer (no token), in its own JSON shape
    assert content_type == "application/json"
    assert _error(body)["code"] == "unauthorized"
