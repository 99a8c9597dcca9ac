"""A server killed (SIGKILL) between commit and index heals its index from the database."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.factories import campaign_payload
from tests.integration.conftest import MODELS_DIR

GUNICORN = Path(sys.executable).parent / "gunicorn"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(data_dir: Path) -> Iterator[str]:
    """Run gunicorn on the data dir; yield its URL; SIGKILL the whole process group after."""
    port = _free_port()
    env = {
        **os.environ,
        "KB_DATA_DIR": str(data_dir),
        "KB_MODELS_DIR": str(MODELS_DIR),
        "KB_INDEX_INTERVAL_S": "3600",  # only writes and start-up trigger indexing
    }
    process = subprocess.Popen(
        [str(GUNICORN), "--workers", "1", "--bind", f"127.0.0.1:{port}", "kb:create_app()"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(f"{url}/api/v1/campaigns") is not None, timeout_s=60)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310  # local test server
            return json.load(response)
    except OSError:
        return None


def _post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(  # noqa: S310  # local test server
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        status: int = response.status
        return status


def _wait(condition: Any, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"condition not met within {timeout_s} s")


def _pending(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "kb.sqlite3") as connection:
        count: int = connection.execute("SELECT count(*) FROM index_outbox").fetchone()[0]
        return count


def test_killed_server_heals_index_on_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    titles = [f"沉睡会员召回第{i}期" for i in range(5)]
    with server(data_dir) as url:
        for i, title in enumerate(titles):
            body = campaign_payload(title=title, external_id=f"crash-{i}")
            assert _post(f"{url}/api/v1/campaigns", body) == 201
        # The background indexer is still loading its models: these writes are committed but
        # not yet indexed when the server dies.
        assert _pending(data_dir) > 0
    with server(data_dir) as url:

        def all_indexed() -> bool:
            found = _get(
                f"{url}/api/v1/search?{urlencode({'q': '沉睡会员召回', 'mode': 'keyword'})}"
            )
            return found is not None and found["total"] == len(titles)

        _wait(all_indexed, timeout_s=180)
        _wait(lambda: _pending(data_dir) == 0, timeout_s=60)
        listing = _get(f"{url}/api/v1/search?q=&limit=100")
        assert sorted(r["title"] for r in listing["results"]) == sorted(titles)
        semantic = _get(
            f"{url}/api/v1/search?{urlencode({'q': '沉睡会员召回', 'mode': 'semantic'})}"
        )
        assert {r["title"] for r in semantic["results"]} == set(titles)
