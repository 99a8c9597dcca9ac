"""One copy of the vectors per host: workers map the file the first one wrote, and follow on."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.searching import indexer, vector_file
from kb.searching.indexer import SearchIndexes, get_indexes
from search import ann, vector
from search.vector import VectorIndex
from tests.conftest import make_app
from tests.factories import campaign_payload


def create(client: FlaskClient, **overrides: Any) -> int:
    response = client.post("/api/v1/campaigns", json=campaign_payload(**overrides))
    assert response.status_code == 201, response.get_json()
    campaign_id: int = response.get_json()["id"]
    return campaign_id


def another_worker(app: Flask, tmp_path: Path) -> Flask:
    """Return a second app on the same data directory and database, as a second worker."""
    url = app.config.get("DATABASE_URL")
    return make_app(tmp_path, url if url and url.startswith("postgresql") else None)


def meaning(worker: Flask, text: str) -> list[tuple[int, float]]:
    with worker.app_context():
        indexes = get_indexes()
        indexes.sync_vectors()
        (embedder,) = indexes.embedders
        return indexes.vectors[embedder.name].search(embedder.encode_queries([text])[0], limit=10)


def mapped(indexes: SearchIndexes) -> bool:
    return all(isinstance(v._snapshot().base, np.memmap) for v in indexes.vectors.values())


def test_workers_share_the_file_the_first_one_wrote_and_follow_changes(
    app: Flask, client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rewrite the file as soon as a tenth of the rows are outside it (at scale: 5,000 rows).
    monkeypatch.setattr(vector_file, "MIN_RESAVE_ROWS", 0)
    first = create(client)
    second = create(client, external_id="vf-2", title="宝妈拼团裂变", goal_type="referral")
    expected = meaning(app, "宝妈拼团")
    with app.app_context():
        assert mapped(get_indexes())  # the writer serves from its own file too
    pointer = json.loads(
        (vector_file.directory(get_indexes_of(app)) / vector_file.POINTER).read_text()
    )
    assert set(pointer["models"]) == {"fake"}

    worker = another_worker(app, tmp_path)
    assert meaning(worker, "宝妈拼团") == expected
    with worker.app_context():
        assert mapped(get_indexes())
        assert get_indexes().vectors["fake"].unsaved_rows() == 0

    # An edit stores new embeddings: the worker follows the database from the file's ids, and
    # a worker started later (from the file, rewritten or not) ranks as the first one does.
    body = campaign_payload(
        external_id="vf-2", title="宝妈拼团裂变", goal_type="referral", summary="健身年卡续费提醒"
    )
    response = client.put(f"/api/v1/campaigns/{second}", json={**body, "version": 1})
    assert response.status_code == 200, response.get_json()
    with app.app_context():
        indexer.drain()  # embeds the changed passages, if the request left them to the indexer
    now = meaning(app, "健身年卡续费提醒")
    assert now != expected
    assert meaning(worker, "健身年卡续费提醒") == now
    assert meaning(another_worker(app, tmp_path), "健身年卡续费提醒") == now

    # Trashed through the first worker: gone from the second one's vectors.
    assert client.delete(f"/api/v1/campaigns/{first}").status_code in (200, 204)
    assert first not in dict(meaning(worker, "沉睡会员召回"))


def get_indexes_of(app: Flask) -> SearchIndexes:
    with app.app_context():
        return get_indexes()


def test_a_file_beyond_the_database_is_ignored_and_rewritten(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    create(client)
    expected = meaning(app, "沉睡会员召回")
    folder = vector_file.directory(get_indexes_of(app))
    pointer = json.loads((folder / vector_file.POINTER).read_text())
    pointer["loaded_upto"] += 1000  # as if written against another, larger database
    (folder / vector_file.POINTER).write_text(json.dumps(pointer))

    worker = another_worker(app, tmp_path)
    assert meaning(worker, "沉睡会员召回") == expected
    rewritten = json.loads((folder / vector_file.POINTER).read_text())
    assert rewritten["loaded_upto"] == pointer["loaded_upto"] - 1000


def test_a_model_name_with_dots_keeps_its_fresh_files(tmp_path: Path) -> None:
    index = VectorIndex("gemma.v2", 4)
    index.replace(1, np.eye(4, dtype=np.float32)[:2])
    indexes: Any = SimpleNamespace(
        data_dir=tmp_path, vectors={"gemma.v2": index}, _loaded_upto=5, _history_upto=0
    )
    vector_file.directory(indexes).mkdir(parents=True)
    vector_file._write(indexes)
    vector_file._write(indexes)  # the second write removes the first one's files only
    files = sorted(p.name for p in vector_file.directory(indexes).glob("*.npy"))
    pointer = json.loads((vector_file.directory(indexes) / vector_file.POINTER).read_text())
    prefix = pointer["models"]["gemma.v2"]["prefix"]
    assert files == [f"{prefix}.blocks.npy", f"{prefix}.rows.npy"]
    ((found, score),) = index.search(np.eye(4, dtype=np.float32)[0], limit=1)
    assert found == 1
    assert score == pytest.approx(1.0)


def test_a_fresh_write_removes_the_older_files_int8_copy_and_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector, "INT8_MIN_ROWS", 0)  # every file gets its int8 copy
    index = VectorIndex("e5", 4)
    index.replace(1, np.eye(4, dtype=np.float32)[:2])
    indexes: Any = SimpleNamespace(
        data_dir=tmp_path, vectors={"e5": index}, _loaded_upto=5, _history_upto=0
    )
    folder = vector_file.directory(indexes)
    folder.mkdir(parents=True)
    vector_file._write(indexes)
    first = json.loads((folder / vector_file.POINTER).read_text())["models"]["e5"]["prefix"]
    (folder / f"{first}.int8.npy.123-4.tmp").write_bytes(b"")  # a builder that died
    index.replace(2, np.eye(4, dtype=np.float32)[2:])
    vector_file._write(indexes)
    prefix = json.loads((folder / vector_file.POINTER).read_text())["models"]["e5"]["prefix"]
    kinds = ["blocks", "int8", "int8blocks", "int8mean", "rows"]
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        [vector_file.POINTER, *(f"{prefix}.{kind}.npy" for kind in kinds)]
    )
    assert index._snapshot().int8 is not None  # mapped with its copy after the write


def graph_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.ann.*")}


@pytest.fixture
def graphs_everywhere(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Build a graph for the tests' few rows and use it (at this size the scan is faster)."""
    app.config["ANN_MIN_ROWS"] = 1
    monkeypatch.setattr(ann, "MAX_COST_SHARE", float("inf"))
    monkeypatch.setattr(vector, "ANN_CHECK_S", 0.0)


@pytest.mark.usefixtures("graphs_everywhere")
def test_the_host_builds_one_graph_per_file_that_every_worker_maps_and_rebuilds_it_with_the_file(
    app: Flask, client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_file, "MIN_RESAVE_ROWS", 0)
    create(client)
    create(client, external_id="vf-2", title="宝妈拼团裂变", goal_type="referral")
    expected = meaning(app, "宝妈拼团")
    indexes = get_indexes_of(app)
    folder = vector_file.directory(indexes)
    with app.app_context():
        built = vector_file.wait_for_graphs(indexes, timeout_s=120)
    calibration = built["fake"]
    assert calibration is not None
    assert calibration.used
    prefix = json.loads((folder / vector_file.POINTER).read_text())["models"]["fake"]["prefix"]
    assert graph_files(folder) == {f"{prefix}.ann.usearch", f"{prefix}.ann.json"}

    worker = another_worker(app, tmp_path)
    worker.config["ANN_MIN_ROWS"] = 1
    assert meaning(worker, "宝妈拼团") == expected  # the graph ranks as the first worker did
    with worker.app_context():
        graph = get_indexes().vectors["fake"]._snapshot().graph
    assert graph is not None  # mapped from the host's one file, not built again
    assert str(folder / f"{prefix}.ann.usearch") in Path("/proc/self/maps").read_text()
    assert meaning(app, "宝妈拼团") == expected
    with app.app_context():
        assert get_indexes().vectors["fake"]._snapshot().graph is not None  # the writer too

    # A new campaign puts over a tenth of the rows in the writer's memory: it rewrites the file,
    # which gets its own graph, and the old file's graph goes with it.
    create(client, external_id="vf-3", title="健身年卡续费提醒", goal_type="retention")
    now = meaning(app, "健身年卡续费提醒")
    with app.app_context():
        vector_file.wait_for_graphs(indexes, timeout_s=120)
    rewritten = json.loads((folder / vector_file.POINTER).read_text())["models"]["fake"]["prefix"]
    assert rewritten != prefix
    assert graph_files(folder) == {f"{rewritten}.ann.usearch", f"{rewritten}.ann.json"}
    assert meaning(another_worker(app, tmp_path), "健身年卡续费提醒") == now


@pytest.mark.usefixtures("graphs_everywhere")
def test_a_damaged_graph_is_logged_searched_exactly_and_built_again(
    app: Flask, client: FlaskClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    create(client)
    create(client, external_id="vf-2", title="宝妈拼团裂变", goal_type="referral")
    expected = meaning(app, "宝妈拼团")
    indexes = get_indexes_of(app)
    folder = vector_file.directory(indexes)
    with app.app_context():
        vector_file.wait_for_graphs(indexes, timeout_s=120)
    (graph,) = folder.glob("*.ann.usearch")
    graph.write_bytes(b"usearch, but not really")

    worker = another_worker(app, tmp_path)
    worker.config["ANN_MIN_ROWS"] = 1
    with caplog.at_level(logging.WARNING):
        assert meaning(worker, "宝妈拼团") == expected  # the exact scan answers
    assert "approximate vector index unusable, searching exactly" in caplog.text
    with worker.app_context():
        vector_file.wait_for_graphs(get_indexes(), timeout_s=120)  # this worker rebuilt it
    prefix = graph.with_name(graph.name.removesuffix(".ann.usearch"))
    calibration = ann.read_calibration(prefix)
    assert calibration is not None
    assert ann.open_graph(prefix, rows=calibration.rows, dim=calibration.dim) is not None
    assert meaning(another_worker(app, tmp_path), "宝妈拼团") == expected
