"""gunicorn with the project's gunicorn.conf.py: indexing starts at boot; forwarded headers obey
KB_TRUSTED_PROXIES, not gunicorn's own trust of 127.0.0.1."""

from __future__ import annotations

import http.client
import sqlite3
from pathlib import Path

import pytest

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from tests.factories import campaign_payload
from tests.integration.live import Store, app_on, gunicorn, wait_until

pytestmark = pytest.mark.integration


def _queued(store: Store) -> int:
    with sqlite3.connect(store.data_dir / "kb.sqlite3") as connection:
        count: int = connection.execute(
            "SELECT count(*) FROM index_outbox WHERE embedded_at IS NULL"
            " OR id > (SELECT coalesce(min(last_seq), 0) FROM index_host)"
        ).fetchone()[0]
        return count


def test_a_worker_drains_the_change_log_before_any_request(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    with app_on(store, migrate=True):
        for n in range(3):
            services.create_campaign(validate_campaign(campaign_payload(external_id=f"boot-{n}")))
    assert _queued(store) == 3  # written, not yet indexed: nothing drained them
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(store.env(), log_path) as (_server, port):
        # No request is sent until the change log is empty: the worker drained it at boot.
        wait_until(lambda: _queued(store) == 0, timeout_s=120, what="drain at worker boot")

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", "/login", headers={"X-Forwarded-Proto": "https"})
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        assert response.status == 200
        # KB_TRUSTED_PROXIES=0: the header is not believed, so this is no HTTPS request.
        assert response.getheader("Strict-Transport-Security") is None
    assert "Traceback" not in log_path.read_text(errors="replace")
