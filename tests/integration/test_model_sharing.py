"""gunicorn workers of one host share the model weights: both map the same weight files from
the models directory, and the pages they both read are counted once (Shared, not Private)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.model_sharing import mapped_kb
from search.embedder import USE_WEIGHTS_DIR_NAME
from tests.integration.conftest import MODELS_DIR
from tests.integration.live import Store, app_on, gunicorn, wait_until

pytestmark = pytest.mark.integration

# The USE layers every query runs through (cnn_W, w1/w2, d0..d3, p1/p3): ≈ 10 MB.
LAYERS_KB = 8 * 1024


def _workers(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def _weights_kb(pid: int, folder: Path) -> dict[str, int]:
    """Sum the smaps fields of the process's mappings of files in folder (kB)."""
    return mapped_kb(pid, folder, ("Rss", "Shared_Clean", "Private_Clean", "Private_Dirty"))


def test_two_workers_read_the_same_use_weight_pages(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    with app_on(store, migrate=True):
        pass
    folder = (MODELS_DIR / USE_WEIGHTS_DIR_NAME).resolve()
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(store.env(), log_path, workers=2) as (server, _port):

        def both_warmed_on_shared_pages() -> bool:
            pids = _workers(server.pid)
            if len(pids) != 2:
                return False
            return all(_weights_kb(pid, folder)["Shared_Clean"] >= LAYERS_KB for pid in pids)

        # Each worker warms up at boot (embeds the floor's texts): no request is needed.
        wait_until(
            both_warmed_on_shared_pages, timeout_s=240, what="both workers on shared weights"
        )
        for pid in _workers(server.pid):
            weights = _weights_kb(pid, folder)
            # Read-only mappings of files: nothing of them is a private copy of the worker's.
            assert weights["Private_Dirty"] == 0, weights
    assert "Traceback" not in log_path.read_text(errors="replace")
