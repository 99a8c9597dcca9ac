"""A keyword rebuild runs beside the app: the old index answers, the status shows its progress."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from kb.searching import indexer
from kb.searching.worker import WORKER
from search.documents import CampaignText
from search.keyword import storage, writing
from tests.conftest import make_app
from tests.factories import campaign_payload


def body(response: TestResponse) -> dict[str, Any]:
    """Return a JSON answer's object."""
    data = response.get_json()
    assert isinstance(data, dict)
    return data


class _Asleep:
    def wake(self) -> None:
        pass


@pytest.fixture
def queued(tmp_path: Path) -> Flask:
    """An app whose writes are only queued: the test drains and rebuilds when it chooses."""
    app = make_app(tmp_path, None, INDEX_SYNC=False)
    app.extensions[WORKER] = _Asleep()
    return app


def test_searches_use_the_old_index_while_a_rebuild_runs(
    queued: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "_BUILDING_EVERY", 1)
    monkeypatch.setattr(writing, "PROGRESS_EVERY", 1)
    # Written in this process as it is read: with worker processes a build collects its first
    # FIRST_SEGMENT_DOCS documents before anything is written, so nothing is added after two.
    monkeypatch.setattr(writing, "MAX_WORKERS", 1)
    client = queued.test_client(role="viewer")
    editor = queued.test_client(role="editor")
    created = [
        body(
            editor.post(
                "/api/v1/campaigns",
                json=campaign_payload(title=f"蓝莓拼团第{i}期", external_id=f"b{i}"),
            )
        )
        for i in range(3)
    ]
    with queued.app_context():
        indexer.drain()
    assert body(client.get("/api/v1/index/status"))["keyword_build"] is None

    def found(query: str) -> list[int]:
        answer = client.get("/api/v1/search", query_string={"q": query, "mode": "keyword"})
        return sorted(hit["id"] for hit in body(answer)["results"])

    seen: list[dict[str, Any]] = []
    real = indexer._iter_texts

    def watched(ids: Sequence[int], prepare: Any = None) -> Iterator[CampaignText]:
        for n, text in enumerate(real(ids, prepare)):
            if n == 2:  # two campaigns handed to the new index, not switched to yet
                seen.append(body(client.get("/api/v1/index/status"))["keyword_build"])
                assert found("蓝莓拼团") == sorted(c["id"] for c in created)
            yield text

    monkeypatch.setattr(indexer, "_iter_texts", watched)
    with queued.app_context():
        assert indexer.rebuild() == 3
    assert len(seen) == 1
    assert seen[0]["total"] == 3
    assert seen[0]["added"] == 2
    assert seen[0]["started_at"]
    assert body(client.get("/api/v1/index/status"))["keyword_build"] is None
    assert found("蓝莓拼团") == sorted(c["id"] for c in created)


def test_the_reindex_command_shows_the_keyword_build(
    queued: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = queued.test_client(role="editor")
    for i in range(3):
        editor.post(
            "/api/v1/campaigns", json=campaign_payload(title=f"草莓团购{i}", external_id=f"s{i}")
        )
    steps: list[int] = []
    real = indexer.rebuild

    def counted(*, progress: Any = None) -> int:
        def step(count: int) -> None:
            steps.append(count)
            progress(count)

        return real(progress=step)

    monkeypatch.setattr(indexer, "rebuild", counted)
    result = queued.test_cli_runner().invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    assert "已重建索引：3 个活动" in result.output
    assert sum(steps) == 3  # the bar advances with every campaign the keyword build adds
