"""The gunicorn master loads the libraries, the analyzer and the models before it forks
(kb/prefork.py): no thread exists in it at the fork, a forked worker encodes with the
master's model objects (on more torch threads too), and the workers share those pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from tests.factories import campaign_payload
from tests.integration.conftest import MODELS_DIR
from tests.integration.live import ROOT, Store, app_on, create_token, gunicorn, wait_until

pytestmark = pytest.mark.integration

# Preloads as the master does, forks, and in the child builds the app as a worker does (with
# KB_TORCH_THREADS=2) and encodes a query; prints what both saw as JSON. An alarm ends a child
# that hangs in a thread pool the fork did not copy.
FORK_CHECK = """
import json, os, signal
from kb import prefork
prefork.preload()
threads_at_fork = prefork.threads_other_than_main()
from search import embedder as embedding
preloaded = next(iter(embedding._preloaded.values()))
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    signal.alarm(120)
    os.environ["KB_TORCH_THREADS"] = "2"
    import torch
    from kb import create_app
    from kb.searching import indexer
    app = create_app()
    with app.app_context():
        embedders = indexer.get_indexes().embedders
    vectors = {e.name: e.encode_queries(["沉睡会员召回"])[0].tolist() for e in embedders}
    shared = [a is b for a, b in zip(embedders, preloaded)]
    os.write(write, json.dumps(
        {"vectors": vectors, "shared": shared, "torch_threads": torch.get_num_threads()}
    ).encode())
    os._exit(0)
os.close(write)
chunks = []
while chunk := os.read(read, 1 << 20):
    chunks.append(chunk)
_, status = os.waitpid(pid, 0)
child = json.loads(b"".join(chunks) or b"{}")
print(json.dumps({"threads_at_fork": threads_at_fork, "status": status, **child}))
"""

# The same query encoded by a process that never forked.
PLAIN_ENCODE = """
import json, sys
from pathlib import Path
from search.embedder import load_embedders
embedders = load_embedders("e5,use", Path(sys.argv[1]))
print(json.dumps({e.name: e.encode_queries(["沉睡会员召回"])[0].tolist() for e in embedders}))
"""


def test_a_forked_worker_encodes_with_the_masters_models(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KB_DATA_DIR": str(tmp_path / "data"),
        "KB_MODELS_DIR": str(MODELS_DIR),
        "KB_EMBEDDING_MODELS": "e5,use",
        "HF_HUB_OFFLINE": "1",
    }
    checked = subprocess.run(
        [sys.executable, "-c", FORK_CHECK],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr[-3000:]
    seen = json.loads(checked.stdout.strip().splitlines()[-1])
    assert seen["threads_at_fork"] == []
    assert seen["status"] == 0, checked.stderr[-3000:]  # 14 (SIGALRM): the child hung
    assert seen["shared"] == [True, True]  # the app's embedders are the master's objects
    assert seen["torch_threads"] == 2
    plain = subprocess.run(
        [sys.executable, "-c", PLAIN_ENCODE, str(MODELS_DIR)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    expected = json.loads(plain.stdout.strip().splitlines()[-1])
    for name in ("e5", "use"):
        assert seen["vectors"][name] == pytest.approx(expected[name], abs=1e-5), name


def _memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            fields[key] = int(rest.split()[0])
    return fields


def _workers(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def _get(port: int, path: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  # local server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_gunicorn_workers_share_what_the_master_preloaded(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    token = create_token(store, "viewer")
    with app_on(store):
        campaign = services.create_campaign(validate_campaign(campaign_payload()))
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(store.env(), log_path, workers=2) as (server, port):
        wait_until(lambda: len(_workers(server.pid)) == 2, timeout_s=300, what="two workers")

        def ready() -> bool:
            try:
                return _get(port, "/readyz")[0] == 200
            except OSError:
                return False

        wait_until(ready, timeout_s=240, what="/readyz")
        assert _get(port, "/healthz") == (200, {"status": "ok"})
        query = "/api/v1/search?" + urlencode({"q": "沉睡会员", "mode": "semantic"})

        def embedded() -> bool:
            # Ready means the keyword index is current; the campaign's vectors are computed by
            # one worker after that (kb/searching/indexer.py _follow), and a search loads them.
            status, found = _get(port, query, token)
            return status == 200 and bool(found["results"])

        wait_until(embedded, timeout_s=240, what="the campaign's vectors")
        for _ in range(4):  # new connections: both workers answer in turn
            status, found = _get(port, query, token)
            assert status == 200
            assert campaign.id in [hit["id"] for hit in found["results"]]  # type: ignore[union-attr]
        for pid in _workers(server.pid):
            memory = _memory_kb(pid)
            # Libraries and models are the master's pages: far more shared than the worker's own.
            assert memory["Shared_Dirty"] > 150 * 1024, memory
            assert memory["Private_Dirty"] < memory["Shared_Dirty"], memory
    log = log_path.read_text(errors="replace")
    assert "models use loaded in" in log  # the master preloaded the model
    assert "Forking beside other threads" not in log
    assert "Traceback" not in log
