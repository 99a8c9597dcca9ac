"""gunicorn's own error answers in the API's JSON shape under /api/ (``worker_class`` in gunicorn.conf.py).

gunicorn answers some requests before the app sees them: a request line past
``limit_request_line`` (414), too many or too long header fields (431), a malformed request (400),
an error while writing a response (500). Its body is an HTML page, which an API client cannot
read as ``{"error": {...}}``. This worker keeps gunicorn's decisions (status, logging, access
log) and only changes the body written for /api/ paths.

The request line is often what failed to parse, so the path is read beforehand: the first bytes
of each request are peeked (``MSG_PEEK`` leaves them for gunicorn's parser) once they have arrived.
When they cannot be peeked (TLS terminated in gunicorn), gunicorn's page is kept.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from typing import Any

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

# Chinese messages for gunicorn's statuses, with the API's error codes (kb.errors for the app's).
GUNICORN_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求格式有误（请求行或请求头无法解析）"),
    403: ("forbidden", "请求被拒绝"),
    414: ("uri_too_long", "请求地址过长：请求行（方法、路径与查询参数）超过上限"),
    417: ("expectation_failed", "不支持请求头 Expect 的取值"),
    431: ("header_fields_too_large", "请求头字段过多或过长"),
    500: ("internal_error", "服务器内部错误"),
    501: ("not_implemented", "不支持该传输编码"),
}
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) ([^\r\n]*)\r\n")
_API_REQUEST = re.compile(rb"^[A-Z]{1,16} +(?:https?://[^/ ]*)?/api/")
_PEEK_BYTES = 64


class JsonErrorWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's gthread worker, answering its own errors as JSON on /api/ paths."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Each connection is handled in one thread at a time: the peek belongs to that thread.
        self._current = threading.local()

    def handle(self, conn: Any) -> Any:
        # A connection with data waiting (keep-alive, or seen ready by the poller) is peeked now;
        # a fresh one is peeked again once gthread's own wait for its first bytes succeeds.
        self._current.api = _peeks_api_request(conn.sock)
        wait_for_data = conn.wait_for_data

        def wait_then_peek(timeout: float) -> bool:
            ready = bool(wait_for_data(timeout))
            if ready:
                self._current.api = _peeks_api_request(conn.sock)
            return ready

        conn.wait_for_data = wait_then_peek
        try:
            return super().handle(conn)
        finally:
            conn.wait_for_data = wait_for_data

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        path = getattr(req, "path", None)
        api = (
            path.startswith("/api/")
            if isinstance(path, str)
            else getattr(self._current, "api", False)
        )
        if not api:
            super().handle_error(req, client, addr, exc)
            return
        # gunicorn decides the status and logs; its HTML goes to the capture, JSON to the client.
        capture = _Capture()
        super().handle_error(req, capture, addr, exc)
        match = _STATUS_LINE.match(capture.data)
        status, reason = (int(match[1]), match[2].decode("latin-1")) if match else (500, "Error")
        try:
            client.sendall(json_error(status, reason))
        except OSError:
            self.log.debug("Failed to send error message.")


def json_error(status: int, reason: str) -> bytes:
    """Return a whole HTTP/1.1 response: ``{"error": {"code", "message"}}`` and Connection: close."""
    code, message = GUNICORN_ERRORS.get(status, ("error", reason))
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _peeks_api_request(sock: Any) -> bool:
    """Say whether the request waiting on ``sock`` is for /api/ (False when none can be seen)."""
    try:
        start = sock.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (OSError, ValueError):  # nothing yet, closed, or a TLS socket (no flags allowed)
        return False
    return bool(_API_REQUEST.match(start))


class _Capture:
    """Stands in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, _flag: bool) -> None:
        return None

    def sendall(self, data: bytes) -> None:
        self.data += data
