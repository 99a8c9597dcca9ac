"""The relevance floor's recalibration runs off the search path (kb/searching/floor.py).

A search that finds the calibration stale gets the last one at once; one background thread per
process and SearchIndexes computes the new one and swaps it in. Unit tests with the hashing fake
model and a real vector index (no app: no library texts), then one through the app.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.searching import floor
from kb.searching.indexer import get_indexes
from search.embedder import Embedder, FakeEmbedder
from search.relevance import Calibration, ModelScores
from search.vector import VectorIndex
from tests.factories import campaign_payload

WAIT_S = 30.0  # bounded waits: a hang fails the test instead of stalling the run


class Indexes:
    """What the floor reads of SearchIndexes: the vectors per model and the data directory."""

    def __init__(self, data_dir: Path, embedders: list[Embedder]) -> None:
        self.data_dir = data_dir
        self.embedders = embedders
        self.vectors = {e.name: VectorIndex(e.name, e.dim) for e in embedders}

    def add(self, campaign_id: int, text: str) -> None:
        for embedder in self.embedders:
            self.vectors[embedder.name].replace(campaign_id, embedder.encode_passages([text]))


TEXTS = [
    "双十一沉睡会员召回",
    "宝妈拼团裂变三人成团",
    "新人红包拉新",
    "直播间限时秒杀",
    "积分兑换复购",
]


@pytest.fixture
def indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Indexes:
    built = Indexes(tmp_path, [FakeEmbedder("fake", 64)])
    for campaign_id, text in enumerate(TEXTS, start=1):
        built.add(campaign_id, text)
    # The models serving are backfill's to say (it counts in the database): here, all of them.
    monkeypatch.setattr(floor.backfill, "serving", lambda indexes: list(indexes.embedders))
    return built


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make every computation of the floors wait for ``gate``; count them in ``calls``."""
    real = floor.calibrate
    state = type("Gate", (), {})()
    state.gate = threading.Event()
    state.started = threading.Event()
    state.calls = []

    def slow(samples: list[list[ModelScores]]) -> Calibration | None:
        state.calls.append(threading.current_thread().name)
        state.started.set()
        assert state.gate.wait(WAIT_S), "the gate was never opened"
        return real(samples)

    monkeypatch.setattr(floor, "calibrate", slow)
    return state


def test_a_search_gets_the_last_calibration_while_the_new_one_is_computed(
    indexes: Any, gated: Any
) -> None:
    gated.gate.set()  # the first calibration: computed by the search itself, there is none
    first = floor.calibration(indexes)
    assert first is not None
    assert gated.calls == [threading.current_thread().name]
    gated.gate.clear()
    gated.started.clear()
    gated.calls.clear()

    indexes.add(len(TEXTS) + 1, "会员日满减叠加优惠券")  # a write: the calibration is stale
    started = time.monotonic()
    for _ in range(5):  # searches meanwhile: each gets the last one, one thread computes
        assert floor.calibration(indexes) is first
    assert time.monotonic() - started < floor.RECALIBRATE_DELAY_S  # none waited for the gate
    assert gated.calls == []  # the thread lets the searches that noticed run alone first
    assert gated.started.wait(WAIT_S)
    assert gated.calls == ["kb-floor-calibration"]
    assert floor._state(indexes).calibrated_at == {"fake": len(TEXTS)}

    gated.gate.set()
    assert floor.wait_for_recalibration(indexes, WAIT_S)
    second = floor.calibration(indexes)
    assert second is not None
    assert second is not first
    assert floor._state(indexes).calibrated_at == {"fake": len(TEXTS) + 1}
    assert gated.calls == ["kb-floor-calibration"]  # fresh now: nothing more computed


def test_an_edit_that_keeps_the_passage_count_recalibrates(indexes: Any) -> None:
    first = floor.current(indexes)
    assert first is not None
    indexes.add(1, "双十一沉睡会员召回：短信加优惠券")  # campaign 1 edited: still one passage
    assert len(indexes.vectors["fake"]) == len(TEXTS)
    assert floor.current(indexes) is first  # stale: the last one while the new one is computed
    assert floor.wait_for_recalibration(indexes, WAIT_S)
    second = floor.current(indexes)
    assert second is not None
    assert second is not first
    assert floor.current(indexes) is second  # nothing moved since: no more recalibration


def test_the_swap_brings_the_centroid_the_queries_are_judged_with(indexes: Any) -> None:
    embedder = indexes.embedders[0]
    first = floor.current(indexes)
    assert first is not None
    query = embedder.encode_queries(["直播带货"])[0]
    before = floor.model_scores(first, indexes, embedder, query, [])
    assert before is not None
    for campaign_id in range(10, 30):  # the corpus moves towards live streaming
        indexes.add(campaign_id, f"直播带货第{campaign_id}场")
    assert floor.current(indexes) is first  # stale: the last one, while the new one is computed
    assert floor.wait_for_recalibration(indexes, WAIT_S)
    current = floor.current(indexes)
    assert current is not None
    assert current is not first
    # A search that took ``first`` before the swap gathers its evidence after it: still against
    # first's centroid, the one its floors were computed with.
    straddling = floor.model_scores(first, indexes, embedder, query, [])
    assert straddling is not None
    assert straddling.centroid == before.centroid
    after = floor.model_scores(current, indexes, embedder, query, [])
    assert after is not None
    np.testing.assert_allclose(
        current.centroids["fake"], indexes.vectors["fake"].centroid(), atol=1e-6
    )
    assert after.centroid != pytest.approx(before.centroid)


def test_a_failed_recalibration_is_logged_and_tried_again_only_later(
    indexes: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first = floor.calibration(indexes)
    assert first is not None
    attempts: list[int] = []
    real = floor.calibrate

    def broken(samples: list[list[ModelScores]]) -> Calibration | None:
        attempts.append(1)
        raise RuntimeError("模型崩了")

    monkeypatch.setattr(floor, "calibrate", broken)
    indexes.add(99, "会员日满减叠加优惠券")
    with caplog.at_level(logging.ERROR, logger=floor.log.name):
        assert floor.calibration(indexes) is first
        assert floor.wait_for_recalibration(indexes, WAIT_S)
        assert floor.calibration(indexes) is first  # within RETRY_AFTER_S: no new thread
        assert floor.wait_for_recalibration(indexes, WAIT_S)
    assert attempts == [1]
    assert "相关性门槛的后台重新校准失败" in caplog.text
    assert "模型崩了" in caplog.text

    monkeypatch.setattr(floor, "RETRY_AFTER_S", 0.0)
    monkeypatch.setattr(floor, "calibrate", real)
    assert floor.calibration(indexes) is first  # the retry runs in the background again
    assert floor.wait_for_recalibration(indexes, WAIT_S)
    assert floor.calibration(indexes) is not first
    assert floor._state(indexes).failed_at is None


def test_a_model_newly_serving_is_calibrated_by_the_search_itself(
    indexes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = floor.calibration(indexes)
    assert first is not None
    other = FakeEmbedder("other", 32)  # promoted: the old floors are for another set of models
    indexes.embedders.append(other)
    indexes.vectors["other"] = VectorIndex("other", 32)
    for campaign_id, text in enumerate(TEXTS, start=1):
        indexes.vectors["other"].replace(campaign_id, other.encode_passages([text]))
    second = floor.calibration(indexes)
    assert second is not None
    assert second is not first
    assert floor._state(indexes).calibrated_at == {"fake": len(TEXTS), "other": len(TEXTS)}
    assert floor._state(indexes).refresh is None  # computed here, no thread


def test_without_background_recalibration_the_search_computes_it(
    indexes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(floor, "RECALIBRATE_IN_BACKGROUND", False)  # the bench's "before"
    first = floor.calibration(indexes)
    indexes.add(99, "会员日满减叠加优惠券")
    second = floor.calibration(indexes)
    assert second is not None
    assert second is not first
    assert floor._state(indexes).refresh is None


# ---- through the app: the background thread reads the library from the database ---------------


def test_the_floor_follows_a_write_within_a_bounded_wait(app: Flask, client: FlaskClient) -> None:
    def semantic(query: str) -> None:
        response = client.get("/api/v1/search", query_string={"q": query, "mode": "semantic"})
        assert response.status_code == 200, response.get_json()

    assert client.post("/api/v1/campaigns", json=campaign_payload()).status_code == 201
    semantic("沉睡会员召回")  # the first calibration, on this search
    with app.app_context():
        indexes = get_indexes()
    state = floor._state(indexes)
    first = state.current
    assert first is not None
    lesson = "团长佣金要在成团当天到账"
    payload = campaign_payload(external_id="test-002", title="宝妈拼团裂变", lessons=lesson)
    assert client.post("/api/v1/campaigns", json=payload).status_code == 201

    semantic("拼团裂变")  # served with the last calibration; the new one follows
    assert floor.wait_for_recalibration(indexes, WAIT_S)
    second = state.current
    assert second is not None
    assert second is not first
    assert second.counts == {name: len(index) for name, index in indexes.vectors.items()}
    assert lesson in state.library_vectors["fake"]  # read from the database by the thread
    assert second.library["fake"].shape[0] > first.library["fake"].shape[0]


def _fresh_process(indexes: Indexes) -> Indexes:
    """The same data directory and vectors, seen by a process that has calibrated nothing yet."""
    other = Indexes(indexes.data_dir, indexes.embedders)
    other.vectors = indexes.vectors
    return other


def test_a_new_process_reads_the_stored_calibration_while_it_fits_the_corpus(
    indexes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = floor.calibration(indexes)
    assert first is not None
    assert floor.stored_file(indexes, indexes.embedders).exists()
    computed: list[int] = []
    real = floor.calibrate
    monkeypatch.setattr(floor, "calibrate", lambda samples: computed.append(1) or real(samples))

    again = _fresh_process(indexes)
    assert floor.calibration(again) == first  # read, not computed
    assert computed == []
    read, computed_here = floor._state(again).current, floor._state(indexes).current
    assert read is not None
    assert computed_here is not None
    np.testing.assert_array_equal(read.centroids["fake"], computed_here.centroids["fake"])
    # The read calibration judges queries as the computed one does (background texts and all).
    embedder = indexes.embedders[0]
    query = embedder.encode_queries(["直播带货"])[0]
    judged_there = floor.model_scores(computed_here, indexes, embedder, query, [])
    judged_here = floor.model_scores(read, again, embedder, query, [])
    assert judged_there is not None
    assert judged_here is not None
    np.testing.assert_array_equal(judged_here.background, judged_there.background)
    assert judged_here.centroid == judged_there.centroid

    indexes.add(len(TEXTS) + 1, "会员日满减叠加优惠券")  # a small corpus: any write is a change
    assert floor.calibration(_fresh_process(indexes)) is not None
    assert computed == [1]  # the stored one no longer fits: computed, and stored again
    computed.clear()
    assert floor.calibration(_fresh_process(indexes)) is not None
    assert computed == []


def test_a_stored_calibration_of_other_code_or_after_recalibrate_is_not_used(
    indexes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert floor.calibration(indexes) is not None
    computed: list[int] = []
    real = floor.calibrate
    monkeypatch.setattr(floor, "calibrate", lambda samples: computed.append(1) or real(samples))
    monkeypatch.setattr(floor, "_fingerprint", lambda: "other code or background texts")
    assert floor.calibration(_fresh_process(indexes)) is not None
    assert computed == [1]
    floor.recalibrate(indexes)
    assert not floor.stored_file(indexes, indexes.embedders).exists()
    assert floor.calibration(indexes) is not None
    assert computed == [1, 1]


def test_an_unreadable_stored_calibration_is_computed_again(
    indexes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = floor.stored_file(indexes, indexes.embedders)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an npz file")
    with caplog.at_level(logging.WARNING, logger=floor.__name__):
        assert floor.calibration(indexes) is not None
    assert "读不出" in caplog.text
    with np.load(path, allow_pickle=False) as stored:  # replaced by the one computed
        assert "centroid_fake" in stored
