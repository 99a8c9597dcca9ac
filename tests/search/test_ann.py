"""The approximate graph beside a vector file: recall against the exact scan, the in-memory tail,
tombstones, filters, sharing the mapped file, and falling back to the scan when it is unusable."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from search import ann
from search.vector import VectorIndex, build_graph_file

DIM = 32
PASSAGES = 4


def clustered(rng: np.random.Generator, campaigns: int) -> npt.NDArray[np.float32]:
    """Return PASSAGES rows per campaign: a shared direction, a topic, the campaign, noise."""
    common = rng.standard_normal(DIM)
    topics = rng.standard_normal((20, DIM))
    own = rng.standard_normal((campaigns, DIM))
    topic = rng.integers(0, len(topics), campaigns)
    rows = np.repeat(common + 0.9 * topics[topic] + 0.7 * own, PASSAGES, axis=0)
    rows += 0.5 * rng.standard_normal(rows.shape)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float32)


def ids_of(campaigns: int) -> npt.NDArray[np.int64]:
    return np.repeat(np.arange(1, campaigns + 1, dtype=np.int64), PASSAGES)


@pytest.fixture
def always_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the graph whatever it costs: at test sizes the scan is faster than any graph."""
    monkeypatch.setattr(ann, "MAX_COST_SHARE", float("inf"))


def saved_with_graph(tmp_path: Path, rows: npt.NDArray[np.float32]) -> tuple[Path, VectorIndex]:
    """Save rows of campaigns 1..n as a file with its graph; return the prefix and an exact index."""
    exact = VectorIndex("fake", DIM)
    exact.load(ids_of(len(rows) // PASSAGES), rows)
    prefix = tmp_path / "fake-1"
    exact.save(prefix)
    calibration = build_graph_file(prefix, DIM)
    assert calibration.used, calibration
    return prefix, exact


def opened(prefix: Path) -> VectorIndex:
    index = VectorIndex("fake", DIM)
    index.open_file(prefix)
    return index


def campaign_ids(results: list[list[tuple[int, float]]]) -> list[list[int]]:
    return [[cid for cid, _ in hits] for hits in results]


@pytest.mark.usefixtures("always_used")
def test_the_graph_finds_the_exact_top_100_and_scores_them_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = clustered(rng, 1500)
    prefix, exact = saved_with_graph(tmp_path, rows)
    calibration = ann.read_calibration(prefix)
    assert calibration is not None
    assert calibration.recall >= ann.TARGET_RECALL
    index = opened(prefix)
    assert index._snapshot().graph is not None
    queries = ann.sample_queries(rows, 40, seed=99)  # not the calibration's queries
    got = index.search_many(queries, limit=100)
    want = exact.search_many(queries, limit=100)
    assert ann.recall_at(campaign_ids(want), campaign_ids(got)) >= ann.TARGET_RECALL
    for hits, expected in zip(got, want, strict=True):
        truth = dict(expected)  # a campaign the graph found has its exact score (with bonus)
        for cid, score in hits:
            if cid in truth:
                assert score == pytest.approx(truth[cid], abs=1e-6)
    # The first hits are the query's own campaign, as the exact scan says.
    assert [hits[0][0] for hits in got] == [hits[0][0] for hits in want]


@pytest.mark.usefixtures("always_used")
def test_campaigns_written_after_the_file_and_removed_ones_are_honoured(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rows = clustered(rng, 600)
    prefix, _ = saved_with_graph(tmp_path, rows)
    index = opened(prefix)
    query = rows[17 * PASSAGES]  # a passage of campaign 18
    assert index.search(query, limit=1)[0][0] == 18

    index.remove([18])  # tombstoned: its rows stay in the file and in the graph
    assert 18 not in {cid for cid, _ in index.search(query, limit=100)}
    index.replace(5000, query[None, :] * 1.0)  # a new campaign in memory beside the file
    index.replace(7, np.stack([query, rows[6 * PASSAGES]]))  # an edited one: the tail wins
    assert index._snapshot().graph is not None
    top = index.search(query, limit=3)
    assert [cid for cid, _ in top[:2]] == [7, 5000]  # 7 has a second passage's bonus
    exact = VectorIndex("fake", DIM)
    exact.load(ids_of(600), rows)
    exact.remove([18])
    exact.replace(5000, query[None, :])
    exact.replace(7, np.stack([query, rows[6 * PASSAGES]]))
    queries = ann.sample_queries(rows, 30, seed=5)
    assert (
        ann.recall_at(
            campaign_ids(exact.search_many(queries, limit=50)),
            campaign_ids(index.search_many(queries, limit=50)),
        )
        >= ann.TARGET_RECALL
    )


@pytest.mark.usefixtures("always_used")
def test_filters_return_only_allowed_campaigns_with_the_exact_ranking(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = clustered(rng, 1000)
    prefix, exact = saved_with_graph(tmp_path, rows)
    index = opened(prefix)
    queries = ann.sample_queries(rows, 30, seed=6)
    for share in (0.05, 0.5):  # gathered exactly; through the graph, explored further
        allowed = {int(c) for c in rng.choice(1000, int(1000 * share), replace=False) + 1}
        got = index.search_many(queries, limit=20, allowed=allowed)
        want = exact.search_many(queries, limit=20, allowed=allowed)
        assert all(cid in allowed for hits in got for cid, _ in hits)
        assert ann.recall_at(campaign_ids(want), campaign_ids(got)) >= ann.TARGET_RECALL


@pytest.mark.usefixtures("always_used")
def test_every_process_maps_the_one_graph_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    prefix, _ = saved_with_graph(tmp_path, clustered(rng, 300))
    first, second = opened(prefix), opened(prefix)
    assert first._snapshot().graph is not None
    assert second._snapshot().graph is not None
    graph_path, _ = ann.paths(prefix)
    maps = Path("/proc/self/maps").read_text()
    assert str(graph_path) in maps  # mapped from the file, not read into private memory


def test_a_graph_that_misses_the_recall_bar_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ann, "TARGET_RECALL", 1.01)  # unreachable
    monkeypatch.setattr(ann, "MAX_COST_SHARE", float("inf"))
    rng = np.random.default_rng(5)
    exact = VectorIndex("fake", DIM)
    exact.load(ids_of(300), clustered(rng, 300))
    exact.save(tmp_path / "fake-1")
    calibration = build_graph_file(tmp_path / "fake-1", DIM)
    assert not calibration.used
    assert calibration.expansion == 0
    assert opened(tmp_path / "fake-1")._snapshot().graph is None


@pytest.mark.usefixtures("always_used")
@pytest.mark.parametrize("damage", ["truncated", "missing", "bad calibration", "other rows"])
def test_a_damaged_or_missing_graph_falls_back_to_the_exact_scan(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(6)
    rows = clustered(rng, 400)
    prefix, exact = saved_with_graph(tmp_path, rows)
    graph_path, meta_path = ann.paths(prefix)
    if damage == "truncated":
        graph_path.write_bytes(graph_path.read_bytes()[:1000])
    elif damage == "missing":
        graph_path.unlink()
    elif damage == "bad calibration":
        meta_path.write_text("{not json", encoding="utf-8")
    else:
        meta_path.write_text(
            meta_path.read_text(encoding="utf-8").replace('"rows": 1600', '"rows": 1601'),
            encoding="utf-8",
        )
    with caplog.at_level(logging.WARNING, logger="search.vector"):
        index = opened(prefix)
    assert index._snapshot().graph is None
    assert "approximate vector index unusable, searching exactly" in caplog.text
    queries = ann.sample_queries(rows, 10, seed=7)
    assert index.search_many(queries, limit=30) == exact.search_many(queries, limit=30)


@pytest.mark.usefixtures("always_used")
def test_a_process_that_mapped_the_file_first_picks_up_the_graph_built_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search import vector

    monkeypatch.setattr(vector, "ANN_CHECK_S", 0.0)
    rng = np.random.default_rng(7)
    rows = clustered(rng, 300)
    exact = VectorIndex("fake", DIM)
    exact.load(ids_of(300), rows)
    prefix = tmp_path / "fake-1"
    exact.save(prefix)
    early = opened(prefix)  # before any graph exists: scans
    assert early._snapshot().graph is None
    assert early.graph_calibration() is None
    build_graph_file(prefix, DIM)  # as another process of the host does
    query = rows[:1]
    assert early.search_many(query, limit=10) == exact.search_many(query, limit=10)
    assert early._snapshot().graph is not None
    calibration = early.graph_calibration()
    assert calibration is not None
    assert calibration.rows == len(rows)
