"""The screened scan (search/vector.py _screened_top) returns what the plain exact scan returns.

The screen scores every row with numkong's float16 kernel and scores exactly only the campaigns
that its error bound leaves in the running; these tests hold it to the plain scan's ids, order
and scores on realistic data, with tombstones, a mapped file plus a tail, filters and ties.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from search import vector
from search.vector import VectorIndex, to_stored

Rows = npt.NDArray[np.float32]


@pytest.fixture(autouse=True)
def _fresh_kernel_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector, "_screen_checked", {})


def clustered(rng: np.random.Generator, n: int, dim: int) -> Rows:
    """Rows like a sentence model's: one shared direction, topics, noise; cosines ≈ 0.6-0.95.

    Dense near the top, as e5's cosines are, so many campaigns sit within the screen's margin.
    """
    common = rng.standard_normal(dim)
    topics = rng.standard_normal((40, dim))
    rows = 3.0 * common + 1.2 * topics[rng.integers(0, 40, n)] + rng.standard_normal((n, dim))
    out = rows.astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def both_ways(index: VectorIndex, queries: Rows, **kwargs: Any) -> tuple[list[Any], list[Any]]:
    """Return (screened, plain) results of the same searches."""
    assert vector.SCREEN
    assert vector._screen_kernel(index.dim) is not None  # the screen runs
    screened = [index.search(q, **kwargs) for q in queries]
    vector._screen_checked[index.dim] = None  # as when the kernel fails its check
    plain = [index.search(q, **kwargs) for q in queries]
    del vector._screen_checked[index.dim]
    return screened, plain


def assert_same(screened: list[Any], plain: list[Any]) -> None:
    for got, want in zip(screened, plain, strict=True):
        assert [c for c, _ in got] == [c for c, _ in want]
        # BLAS sums a gathered row in another order than the same row in place: 1 float32 ulp.
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-6)


@pytest.mark.parametrize("dim", [384, 512])  # e5's and USE's sizes
def test_top_100_equals_the_plain_scan_on_dense_realistic_vectors(dim: int) -> None:
    rng = np.random.default_rng(dim)
    lengths = rng.integers(1, 14, 3000)
    rows = clustered(rng, int(lengths.sum()), dim)
    index = VectorIndex("m", dim)
    index.load(np.repeat(np.arange(1, 3001), lengths), rows)
    # Queries near stored passages, as a query near its campaigns' texts.
    queries = rows[rng.integers(0, len(rows), 12)] + 0.05 * clustered(rng, 12, dim)
    screened, plain = both_ways(index, queries, limit=100)
    assert all(len(hits) == 100 for hits in screened)
    assert_same(screened, plain)


@pytest.mark.parametrize("dim", [384, 512])
def test_campaigns_closer_than_the_rough_error_keep_their_exact_order(dim: int) -> None:
    # 2,000 campaigns whose best cosines lie within 0.001 of one another (≈ 5e-7 apart), far
    # closer than the float16 screen can tell apart: the cut at 100 rests on the exact scores.
    rng = np.random.default_rng(dim + 1)
    query = clustered(rng, 1, dim)[0]
    n = 2000
    cosines = 0.8 + 1e-3 * rng.random(n)
    other = rng.standard_normal((n, dim))
    other -= np.outer(other @ query, query)
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    best = cosines[:, None] * query + np.sqrt(1 - cosines[:, None] ** 2) * other
    # A second passage each, pointing away from the query (no bonus) for most campaigns and
    # towards it (a bonus of up to 0.01) for every tenth: both rules of the score at the cut.
    towards = np.where(np.arange(n) % 10 == 0, 1.0, -1.0)[:, None]
    second = towards * 0.1 * rng.random((n, 1)) * query + other[::-1]
    rows = np.empty((2 * n, dim), np.float32)
    rows[0::2], rows[1::2] = best, second
    index = VectorIndex("m", dim)
    index.load(np.repeat(np.arange(n), 2), rows)
    screened, plain = both_ways(index, query[None], limit=100)
    assert_same(screened, plain)


def test_the_rough_cosines_stay_within_the_error_bound() -> None:
    rng = np.random.default_rng(11)
    for dim in (384, 512):
        rows = to_stored(clustered(rng, 4000, dim))
        exact = rows.astype(np.float64)
        for query in clustered(rng, 5, dim):
            kernel = vector._screen_kernel(dim)
            index = VectorIndex("m", dim)
            index.load(np.arange(len(rows)), rows.astype(np.float32))
            rough = vector._screen_scan(kernel, query, index._snapshot())
            error = np.abs(rough - exact @ query.astype(np.float64)).max()
            bound = vector._screen_error(query)
            assert 0 < error <= bound
            assert bound < 1e-3  # tight enough to leave few campaigns to score exactly


def test_tombstones_a_mapped_file_and_its_tail(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    dim = 384
    built = VectorIndex("m", dim)
    lengths = rng.integers(1, 8, 800)
    built.load(np.repeat(np.arange(800), lengths), clustered(rng, int(lengths.sum()), dim))
    built.save(tmp_path / "m")
    index = VectorIndex("m", dim)
    index.open_file(tmp_path / "m")
    for cid in range(700, 900):  # replaced (tombstoned in the file) and new, in the tail
        index.replace(cid, clustered(rng, int(rng.integers(1, 6)), dim))
    index.remove(range(0, 100))  # file rows
    index.remove(range(850, 870))  # tail rows
    state = index._snapshot()
    assert 0 < len(state.base) < state.rows
    assert state.dead_rows
    queries = clustered(rng, 6, dim)
    screened, plain = both_ways(index, queries, limit=50)
    assert_same(screened, plain)
    removed = {*range(0, 100), *range(850, 870)}
    assert not removed & {c for hits in screened for c, _ in hits}


def test_filtered_by_allowed_campaigns() -> None:
    rng = np.random.default_rng(4)
    dim = 384
    index = VectorIndex("m", dim)
    lengths = rng.integers(1, 6, 1000)
    index.load(np.repeat(np.arange(1000), lengths), clustered(rng, int(lengths.sum()), dim))
    # Over GATHER_FRACTION of the rows: the full (screened) scan, then the selection.
    allowed = {int(c) for c in rng.choice(1000, 600, replace=False)}
    queries = clustered(rng, 5, dim)
    screened, plain = both_ways(index, queries, limit=40, allowed=allowed)
    assert_same(screened, plain)
    assert {c for hits in screened for c, _ in hits} <= allowed
    few, few_plain = both_ways(index, queries, limit=500, allowed={1, 2, 3})  # under the limit
    assert_same(few, few_plain)


def test_ties_at_the_cut_are_settled_by_id_as_the_plain_scan_does() -> None:
    rng = np.random.default_rng(5)
    dim = 384
    shared = clustered(rng, 3, dim)
    index = VectorIndex("m", dim)
    for cid in range(300):  # every campaign holds the same passages: all tie
        index.replace(cid, shared if cid % 2 else shared[:2])
    screened, plain = both_ways(index, shared[:1], limit=25)
    assert_same(screened, plain)
    assert [c for c, _ in screened[0]] == sorted(c for c, _ in screened[0])


def test_a_kernel_that_sums_in_float16_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import numkong

    def float16_sums(a: Any, b: Any, metric: str) -> Any:
        return (np.asarray(a, np.float16) @ np.asarray(b, np.float16).T).astype(np.float64)

    monkeypatch.setattr(numkong, "cdist", float16_sums)
    assert vector._screen_kernel(384) is None
    assert "exact scan" in caplog.text
    rng = np.random.default_rng(6)
    index = VectorIndex("m", 384)
    rows = clustered(rng, 200, 384)
    index.load(np.arange(200), rows)
    got = index.search(rows[0], limit=3)  # answered by the plain scan
    assert got[0][0] == 0
    assert got[0][1] == pytest.approx(1.0, abs=1e-3)
