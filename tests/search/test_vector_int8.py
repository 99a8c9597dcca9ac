"""The screen on a mapped file's int8 copy (search/vector.py _Int8Copy) returns the exact scan's results.

The int8 rows err by ≈ 0.01 in a cosine, a hundred times the float16 rows' error: these tests
put many campaigns within that of the cut and hold the screen to the plain scan's ids, order
and scores, check the bound row by row, that a smaller bound would lose campaigns (so the data
does test it), how the copy's files are derived, and that the float16 file stays unmapped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from search import vector
from search.vector import VectorIndex
from tests.search.test_vector_screen import assert_same, clustered

Rows = npt.NDArray[np.float32]


@pytest.fixture(autouse=True)
def _fresh_kernel_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector, "_screen_checked", {})
    monkeypatch.setattr(vector, "_int8_checked", {})
    monkeypatch.setattr(vector, "INT8_MIN_ROWS", 0)  # the tests' files are small


def mapped(tmp_path: Path, ids: npt.ArrayLike, rows: Rows, dim: int) -> VectorIndex:
    built = VectorIndex("m", dim)
    built.load(ids, rows)
    built.save(tmp_path / "m")
    index = VectorIndex("m", dim)
    index.open_file(tmp_path / "m")
    assert index._snapshot().int8 is not None  # the int8 copy screens
    return index


def both_ways(index: VectorIndex, queries: Rows, **kwargs: Any) -> tuple[list[Any], list[Any]]:
    """Return (screened on int8, plain exact) results of the same searches."""
    assert vector.SCREEN
    assert vector.INT8_SCREEN
    screened = [index.search(q, **kwargs) for q in queries]
    vector.SCREEN = False
    try:
        plain = [index.search(q, **kwargs) for q in queries]
    finally:
        vector.SCREEN = True
    return screened, plain


def crowded_cut(rng: np.random.Generator, dim: int, n: int) -> tuple[Rows, Rows]:
    """Return (query, rows): n two-passage campaigns whose scores lie within 0.002 of each other.

    Best cosines 0.8 + U(0, 0.001), far closer than the int8 rows can tell apart; the second
    passage points away from the query (no bonus) for most, towards it (bonus ≤ 0.001) for
    every tenth: both parts of the score decide the cut.
    """
    query = clustered(rng, 1, dim)[0]
    cosines = 0.8 + 1e-3 * rng.random(n)
    other = rng.standard_normal((n, dim))
    other -= np.outer(other @ query, query)
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    best = cosines[:, None] * query + np.sqrt(1 - cosines[:, None] ** 2) * other
    towards = np.where(np.arange(n) % 10 == 0, 1.0, -1.0)[:, None]
    second = towards * 0.01 * rng.random((n, 1)) * query + other[::-1]
    second /= np.linalg.norm(second, axis=1, keepdims=True)
    rows = np.empty((2 * n, dim), np.float32)
    rows[0::2], rows[1::2] = best, second
    return query, rows


@pytest.mark.parametrize("dim", [384, 512])  # e5's and USE's sizes
def test_top_100_equals_the_plain_scan_on_dense_realistic_vectors(tmp_path: Path, dim: int) -> None:
    rng = np.random.default_rng(dim)
    lengths = rng.integers(1, 14, 3000)
    rows = clustered(rng, int(lengths.sum()), dim)
    index = mapped(tmp_path, np.repeat(np.arange(1, 3001), lengths), rows, dim)
    queries = rows[rng.integers(0, len(rows), 10)] + 0.05 * clustered(rng, 10, dim)
    screened, plain = both_ways(index, queries, limit=100)
    assert all(len(hits) == 100 for hits in screened)
    assert_same(screened, plain)


@pytest.mark.parametrize("dim", [384, 512])
def test_campaigns_closer_than_the_int8_error_keep_their_exact_order(
    tmp_path: Path, dim: int
) -> None:
    rng = np.random.default_rng(dim + 1)
    query, rows = crowded_cut(rng, dim, 2000)
    index = mapped(tmp_path, np.repeat(np.arange(2000), 2), rows, dim)
    screened, plain = both_ways(index, query[None], limit=100)
    assert_same(screened, plain)


def test_a_bound_too_small_loses_campaigns_at_the_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The data above does test the bound: divided by 100, the screen drops campaigns that place.
    rng = np.random.default_rng(385)
    query, rows = crowded_cut(rng, 384, 2000)
    index = mapped(tmp_path, np.repeat(np.arange(2000), 2), rows, 384)
    proven = vector._int8_error

    def too_small(int8: Any, q: Any) -> Any:
        q_int, scale, error = proven(int8, q)
        return q_int, scale, error / 100

    monkeypatch.setattr(vector, "_int8_error", too_small)
    screened, plain = both_ways(index, query[None], limit=100)
    assert [c for c, _ in screened[0]] != [c for c, _ in plain[0]]


@pytest.mark.parametrize("dim", [384, 512])
def test_every_rough_cosine_lies_within_its_blocks_bound(tmp_path: Path, dim: int) -> None:
    rng = np.random.default_rng(dim + 2)
    lengths = rng.integers(1, 9, 600)
    rows = clustered(rng, int(lengths.sum()), dim)
    # A few rows with one large component, as e5's rows have: their blocks get coarse scales.
    rows[::97, 7] += 0.5
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index = mapped(tmp_path, np.repeat(np.arange(600), lengths), rows, dim)
    state = index._snapshot()
    exact = vector.widened(state.base).astype(np.float64)
    worst = 0.0
    for query in [*clustered(rng, 4, dim), rows[5], -rows[9]]:
        q = index._prepare(query)[0]
        rough, multiplier, offset, error = vector._rough_rows(vector._screen_kernel(dim), state, q)
        per_row = np.repeat(np.arange(state.blocks), state.lengths[: state.blocks])
        cosine = rough * multiplier[per_row] + offset[per_row]
        gap = np.abs(cosine - exact @ q.astype(np.float64))
        assert (gap <= error[per_row]).all()
        worst = max(worst, float((gap / error[per_row]).max()))
        assert error.max() < 0.05  # tight enough to leave few campaigns to score exactly
    assert worst > 0.05  # the bound is not vacuous: some errors come near it


def test_tombstones_the_tail_and_filters(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    dim = 384
    lengths = rng.integers(1, 8, 800)
    index = mapped(
        tmp_path, np.repeat(np.arange(800), lengths), clustered(rng, int(lengths.sum()), dim), dim
    )
    for cid in range(700, 900):  # replaced (tombstoned in the file) and new, in the tail
        index.replace(cid, clustered(rng, int(rng.integers(1, 6)), dim))
    index.remove(range(0, 100))  # file rows
    index.remove(range(850, 870))  # tail rows
    state = index._snapshot()
    assert 0 < len(state.base) < state.rows
    assert state.int8 is not None
    queries = clustered(rng, 6, dim)
    screened, plain = both_ways(index, queries, limit=50)
    assert_same(screened, plain)
    removed = {*range(0, 100), *range(850, 870)}
    assert not removed & {c for hits in screened for c, _ in hits}
    allowed = {int(c) for c in rng.choice(900, 600, replace=False)}
    screened, plain = both_ways(index, queries, limit=40, allowed=allowed)
    assert_same(screened, plain)
    assert {c for hits in screened for c, _ in hits} <= allowed


def test_the_copy_is_derived_from_the_file_and_rebuilt_when_missing_or_damaged(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(4)
    dim = 384
    rows = clustered(rng, 500, dim)
    index = mapped(tmp_path, np.arange(500), rows, dim)
    int8_rows, per_block, mean = vector._int8_paths(tmp_path / "m")
    assert int8_rows.exists()
    assert per_block.exists()
    assert mean.exists()
    want = index.search(rows[3], limit=5)
    assert want[0][0] == 3
    int8_rows.unlink()  # a file written before the copy existed
    np.save(per_block, np.zeros((3, 7)))  # and a damaged one: both are derived again
    again = VectorIndex("m", dim)
    again.open_file(tmp_path / "m")
    assert again._snapshot().int8 is not None
    assert int8_rows.exists()
    assert again.search(rows[3], limit=5) == want
    assert not list(tmp_path.glob("*.tmp"))


def test_screened_searches_leave_the_float16_file_unmapped(tmp_path: Path) -> None:
    smaps = Path("/proc/self/smaps")
    if not smaps.exists():
        pytest.skip("no /proc/self/smaps here")
    rng = np.random.default_rng(5)
    dim = 512
    lengths = rng.integers(1, 14, 4000)
    rows = clustered(rng, int(lengths.sum()), dim)
    index = mapped(tmp_path, np.repeat(np.arange(4000), lengths), rows, dim)
    base = index._snapshot().base
    for query in clustered(rng, 5, dim):
        assert len(index.search(query, limit=100)) == 100
    # A filter over few campaigns scores only their rows, copied out: read with pread too.
    allowed = set(range(0, 4000, 50))
    hits = index.search(rows[0], limit=100, allowed=allowed)
    assert hits
    assert {c for c, _ in hits} <= allowed
    assert resident_kb(smaps, base) == 0
    vector.INT8_SCREEN = False
    try:
        index.search(rows[0], limit=100)  # the float16 screen reads every row of the mapping
    finally:
        vector.INT8_SCREEN = True
    assert resident_kb(smaps, base) >= base.nbytes // 1024 * 0.9


def resident_kb(smaps: Path, array: Any) -> int:
    address, inside = array.ctypes.data, False
    for line in smaps.read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            low, high = (int(x, 16) for x in head.split("-"))
            inside = low <= address < high
        elif inside and head == "Rss:":
            return int(line.split()[1])
    raise AssertionError("mapping not found")


def test_an_int8_kernel_that_overflows_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import numkong

    real = numkong.cdist

    def int16_sums(a: Any, b: Any, metric: str) -> Any:
        if np.asarray(a).dtype != np.int8:
            return real(a, b, metric=metric)
        wrapped = (np.asarray(a, np.int64) @ np.asarray(b, np.int64).T).astype(np.int16)
        return wrapped.astype(np.float64)

    monkeypatch.setattr(numkong, "cdist", int16_sums)
    rng = np.random.default_rng(6)
    rows = clustered(rng, 300, 384)
    built = VectorIndex("m", 384)
    built.load(np.arange(300), rows)
    built.save(tmp_path / "m")
    index = VectorIndex("m", 384)
    index.open_file(tmp_path / "m")
    assert index._snapshot().int8 is None  # the float16 rows are screened instead
    assert "int8 dot products are not exact" in caplog.text
    screened, plain = both_ways(index, rows[:3], limit=20)
    assert_same(screened, plain)


def test_an_empty_file_and_a_tail(tmp_path: Path) -> None:
    # numkong refuses empty inputs: a file of no rows is skipped, its tail screened.
    index = VectorIndex("m", 8)
    index.replace(1, np.ones((2, 8)))
    index.remove([1])
    assert index.save(tmp_path / "m", map_after=True) == 0
    assert index._snapshot().int8 is not None
    index.replace(2, np.ones((1, 8)))
    screened, plain = both_ways(index, np.ones((1, 8), np.float32), limit=3)
    assert_same(screened, plain)
    assert [c for c, _ in screened[0]] == [2]


def test_small_files_get_no_int8_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector, "INT8_MIN_ROWS", 501)
    rng = np.random.default_rng(7)
    built = VectorIndex("m", 384)
    built.load(np.arange(500), clustered(rng, 500, 384))
    built.save(tmp_path / "m", map_after=True)
    assert built._snapshot().int8 is None
    assert not vector._int8_paths(tmp_path / "m")[0].exists()
