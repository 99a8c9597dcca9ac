"""VectorIndex: writes, the campaign score, allowed sets, compaction and concurrent readers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from search import vector
from search.vector import SECOND_PASSAGE_WEIGHT, VectorIndex, to_stored, widened

DIM = 16


def unit(*values: float) -> npt.NDArray[np.float32]:
    """Return a DIM-dimensional unit vector starting with these components."""
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


def random_rows(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    rows = rng.standard_normal((n, DIM)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def stored(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Return the rows as the index holds them (float16), widened back to float32."""
    return widened(to_stored(rows))


def brute_force(
    data: dict[int, npt.NDArray[np.float32]], query: npt.NDArray[np.float32], limit: int
) -> list[tuple[int, float]]:
    """Return the expected ranking, computed the obvious way on the rows as stored."""
    scored = []
    for cid, rows in data.items():
        cos = np.sort(stored(rows) @ query)[::-1]
        second = float(cos[1]) if len(cos) > 1 else 0.0
        scored.append((cid, float(cos[0]) + SECOND_PASSAGE_WEIGHT * max(second, 0.0)))
    scored.sort(key=lambda hit: (-hit[1], hit[0]))
    return scored[:limit]


def assert_same_ranking(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [cid for cid, _ in got] == [cid for cid, _ in want]
    # 1e-4: the index normalizes rows before rounding them to float16, the reference does not;
    # the two roundings may differ by one unit in a component.
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-4)


def test_empty_index_returns_nothing() -> None:
    index = VectorIndex("fake", DIM)
    assert len(index) == 0
    assert index.campaigns() == set()
    assert index.search(unit(1), limit=5) == []


def test_score_is_best_plus_a_bonus_for_the_second_best() -> None:
    index = VectorIndex("fake", DIM)
    index.replace(1, np.stack([unit(1), unit(0, 1)]))  # one exact passage, one orthogonal
    index.replace(2, np.stack([unit(0.9, 0.1), unit(0.8, 0.2), unit(-1)]))  # two good ones
    index.replace(3, np.stack([unit(-1), unit(-1, 0.1)]))  # negative cosines: no bonus
    query = unit(1)
    best2 = float(stored(unit(0.9, 0.1)) @ query)
    second2 = float(stored(unit(0.8, 0.2)) @ query)
    hits = index.search(query, limit=3)
    assert [cid for cid, _ in hits] == [2, 1, 3]
    assert hits[0][1] == pytest.approx(best2 + SECOND_PASSAGE_WEIGHT * second2, abs=1e-6)
    assert hits[1][1] == pytest.approx(1.0, abs=1e-6)
    assert hits[2][1] == pytest.approx(float(stored(unit(-1, 0.1)) @ query), abs=1e-6)


def test_rows_are_held_in_float16_within_1e_4_of_the_float32_cosine() -> None:
    rng = np.random.default_rng(7)
    index = VectorIndex("fake", 384)
    rows = rng.standard_normal((1000, 384)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index.load(np.arange(1000), rows)
    state = index._snapshot()
    assert state.matrix.itemsize == 2  # half the memory of float32
    query = rows[3] + 0.5 * rows[4]
    query /= np.linalg.norm(query)
    got = dict(index.search(query, limit=1000))
    exact = rows @ query  # one passage per campaign: the score is the cosine
    # bfloat16, held before, was off by up to 4e-4 here.
    assert max(abs(got[i] - float(exact[i])) for i in range(1000)) < 1e-4
    assert next(iter(got)) == int(np.argmax(exact))


def test_the_scan_equals_float32_products_of_the_stored_rows() -> None:
    # More rows than one widening step, a partial last step, several queries at once.
    rng = np.random.default_rng(11)
    rows = random_rows(rng, vector._DOT_CHUNK_ROWS * 2 + 37)
    queries = random_rows(rng, 3)
    got = vector._dot(queries, to_stored(rows))
    np.testing.assert_allclose(got, queries @ stored(rows).T, rtol=0, atol=1e-6)


def test_float16_rounds_to_nearest() -> None:
    # float16 keeps 10 bits after the point: next to 1.0 the step is 2**-10.
    values = [1.0, 1 + 2**-12, 1 + 2**-11, 1 + 2**-10 + 2**-11, 1 + 2**-11 + 2**-12, -0.3, 0.0]
    back = widened(to_stored(np.array(values, dtype=np.float32))).tolist()
    assert back[:5] == [1.0, 1.0, 1.0, 1 + 2**-9, 1 + 2**-10]  # ties (3rd, 4th) go to even
    assert abs(back[5] + 0.3) <= 0.3 * 2**-11
    assert back[6] == 0.0


def test_two_passages_with_the_same_best_cosine_both_count() -> None:
    index = VectorIndex("fake", DIM)
    index.replace(7, np.stack([unit(1, 1), unit(1, 1), unit(0, 1)]))
    [(cid, score)] = index.search(unit(1), limit=1)
    best = float(stored(unit(1, 1)) @ unit(1))
    assert (cid, score) == (7, pytest.approx(best * (1 + SECOND_PASSAGE_WEIGHT), abs=1e-6))


def test_ties_are_broken_by_campaign_id() -> None:
    index = VectorIndex("fake", DIM)
    for cid in (9, 3, 5):
        index.replace(cid, unit(1, 1)[None])
    assert [cid for cid, _ in index.search(unit(1), limit=2)] == [3, 5]


def test_replace_swaps_every_passage_of_the_campaign() -> None:
    index = VectorIndex("fake", DIM)
    index.replace(1, np.stack([unit(1), unit(1, 0.5), unit(1, 0.2)]))
    index.replace(2, unit(0, 1)[None])
    index.replace(1, unit(0, 0, 1)[None])
    assert len(index) == 2
    assert index.campaigns() == {1, 2}
    assert index.search(unit(1), limit=5)[0][1] < 0.01
    assert index.search(unit(0, 0, 1), limit=1) == [(1, pytest.approx(1.0))]


def test_vectors_are_normalized_and_validated() -> None:
    index = VectorIndex("fake", DIM)
    index.replace(1, (unit(1) * 5)[None].astype(np.float64))
    assert index.search(unit(1) * 3, limit=1) == [(1, pytest.approx(1.0))]
    with pytest.raises(ValueError, match="dimension"):
        index.replace(2, np.ones((2, DIM + 1)))
    with pytest.raises(ValueError, match="NaN"):
        index.replace(2, np.full((1, DIM), np.nan))
    assert index.campaigns() == {1}


def test_remove_and_replace_with_no_vectors() -> None:
    index = VectorIndex("fake", DIM)
    for cid in range(5):
        index.replace(cid, unit(1, cid)[None])
    index.remove([1, 3, 99])
    index.replace(4, np.zeros((0, DIM), dtype=np.float32))
    assert index.campaigns() == {0, 2}
    assert len(index) == 2
    assert {cid for cid, _ in index.search(unit(1), limit=10)} == {0, 2}


def test_removing_everything_then_writing_again() -> None:
    index = VectorIndex("fake", DIM)
    for cid in range(4):
        index.replace(cid, np.stack([unit(1, cid), unit(cid, 1)]))
    index.remove(range(4))  # all rows dead: compacts to an empty matrix
    assert (len(index), index.campaigns(), index.search(unit(1), limit=3)) == (0, set(), [])
    index.replace(9, unit(1)[None])
    assert index.search(unit(1), limit=3) == [(9, pytest.approx(1.0))]
    index.load(np.zeros(0, dtype=np.int64), np.zeros((0, DIM)))
    assert (len(index), index.search(unit(1), limit=3)) == (0, [])


def test_load_groups_rows_given_in_any_order_and_replaces_everything() -> None:
    rng = np.random.default_rng(1)
    index = VectorIndex("fake", DIM)
    index.replace(1000, unit(1)[None])
    ids = rng.integers(0, 50, size=400)
    rows = random_rows(rng, 400)
    index.load(ids, rows)
    data = {int(c): rows[ids == c] for c in np.unique(ids)}
    assert index.campaigns() == set(data)
    assert len(index) == 400
    for query in random_rows(rng, 5):
        assert_same_ranking(index.search(query, limit=10), brute_force(data, query, 10))


def test_load_rejects_mismatched_shapes() -> None:
    index = VectorIndex("fake", DIM)
    with pytest.raises(ValueError, match="expected 3"):
        index.load(np.arange(3), np.ones((2, DIM)))


@pytest.mark.parametrize("fraction", [0.05, 0.5, 1.0])  # gather path, full path, everything
def test_allowed_restricts_the_ranking(fraction: float) -> None:
    rng = np.random.default_rng(2)
    index = VectorIndex("fake", DIM)
    data = {cid: random_rows(rng, int(rng.integers(1, 6))) for cid in range(200)}
    for cid, rows in data.items():
        index.replace(cid, rows)
    index.remove([0, 1])  # dead blocks must not leak through either path
    del data[0], data[1]
    allowed = {int(c) for c in rng.choice(200, int(200 * fraction), replace=False)}
    subset = {cid: rows for cid, rows in data.items() if cid in allowed}
    for query in random_rows(rng, 5):
        got = index.search(query, limit=15, allowed=allowed)
        assert_same_ranking(got, brute_force(subset, query, 15))
    assert index.search(unit(1), limit=5, allowed=set()) == []
    assert index.search(unit(1), limit=5, allowed={0, 12345}) == []


def test_search_many_matches_search() -> None:
    rng = np.random.default_rng(3)
    index = VectorIndex("fake", DIM)
    index.load(rng.integers(0, 30, size=120), random_rows(rng, 120))
    queries = random_rows(rng, 4)
    for got, query in zip(index.search_many(queries, limit=7), queries, strict=True):
        assert_same_ranking(got, index.search(query, limit=7))  # GEMM and GEMV round apart


def test_many_queries_are_scored_together_as_the_full_scan_ranks_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Groups of at most 50 rows: every block boundary case (a group of one long block, groups
    # cut between blocks) and campaigns of the top list in different groups.
    monkeypatch.setattr(vector, "_BATCH_ROWS", 50)
    rng = np.random.default_rng(5)
    index = VectorIndex("fake", DIM)
    ids = np.concatenate([rng.integers(0, 90, size=400), np.full(70, 500)])  # one 70-row block
    rows = random_rows(rng, len(ids))
    index.load(ids, rows)
    index.remove([3, 17, 41])  # tombstoned blocks are skipped
    live = {i for i in set(ids.tolist()) if i not in {3, 17, 41}}
    queries = random_rows(rng, vector.BATCH_QUERIES + 3)
    for limit in (1, 5, 40):
        got = index.search_many(queries, limit=limit)
        for hits, query in zip(got, queries, strict=True):
            kept = {i: rows[ids == i] for i in live}
            assert_same_ranking(hits, brute_force(kept, query, limit))
    subset = set(list(live)[::3])
    for hits, query in zip(
        index.search_many(queries, limit=9, allowed=subset), queries, strict=True
    ):
        assert_same_ranking(hits, brute_force({i: rows[ids == i] for i in subset}, query, 9))


def test_compaction_keeps_results_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector, "_MIN_ROWS", 8)
    rng = np.random.default_rng(4)
    index = VectorIndex("fake", DIM)
    data: dict[int, npt.NDArray[np.float32]] = {}
    queries = random_rows(rng, 3)
    rebuilds = 0
    for step in range(600):
        matrix_before = index._state.matrix
        cid = int(rng.integers(0, 40))
        if step % 7 == 0:
            index.remove([cid])
            data.pop(cid, None)
        else:
            data[cid] = random_rows(rng, int(rng.integers(1, 9)))
            index.replace(cid, data[cid])
        state = index._state
        assert state.dead_rows <= vector.MAX_DEAD_FRACTION * state.rows
        rebuilds += state.matrix is not matrix_before
        if step % 50 == 0:
            for query in queries:
                assert_same_ranking(index.search(query, limit=10), brute_force(data, query, 10))
    assert rebuilds > 10  # both growth and compaction ran, many times
    assert index.campaigns() == set(data)
    assert len(index) == sum(len(rows) for rows in data.values())
    for query in queries:
        assert_same_ranking(index.search(query, limit=40), brute_force(data, query, 40))


def test_concurrent_replace_and_search() -> None:
    """Readers always see whole campaigns: each campaign's passages all share one version."""
    rng = np.random.default_rng(5)
    index = VectorIndex("fake", DIM)
    n_campaigns, passages = 50, 4
    base = random_rows(rng, n_campaigns)
    index.load(np.repeat(np.arange(n_campaigns), passages), np.repeat(base, passages, axis=0))
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0, 0, 0]

    def writer() -> None:
        w_rng = np.random.default_rng(6)
        deadline = time.monotonic() + 10
        try:
            writes = 0
            # Keep writing until every reader has raced many writes (or time is up).
            while (writes < 2000 or min(reads) < 50) and time.monotonic() < deadline:
                cid = int(w_rng.integers(0, n_campaigns))
                # Identical passages: a torn read would show as a score below 1 + W.
                index.replace(cid, np.repeat(base[cid][None], int(w_rng.integers(1, 6)), axis=0))
                writes += 1
        except BaseException as error:  # re-raised by the main thread's assert
            errors.append(error)
        finally:
            stop.set()

    def reader(seed: int) -> None:
        r_rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                cid = int(r_rng.integers(0, n_campaigns))
                allowed = {cid, (cid + 1) % n_campaigns} if r_rng.random() < 0.5 else None
                hits = dict(index.search(base[cid], limit=n_campaigns, allowed=allowed))
                assert len(hits) == (2 if allowed else n_campaigns)
                own = float(stored(base[cid]) @ base[cid])  # ≈ 1, as stored
                assert hits[cid] == pytest.approx(own * (1 + SECOND_PASSAGE_WEIGHT), abs=1e-5) or (
                    hits[cid] == pytest.approx(own, abs=1e-5)  # a one-passage version
                )
                reads[seed] += 1
        except BaseException as error:  # re-raised by the main thread's assert
            errors.append(error)

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[0]
    assert min(reads) > 0
    assert index.campaigns() == set(range(n_campaigns))


def test_centroid_is_the_mean_of_live_passages() -> None:
    index = VectorIndex("m", 4)
    assert index.centroid().tolist() == [0.0, 0.0, 0.0, 0.0]
    index.replace(1, [[1, 0, 0, 0], [0, 2, 0, 0]])  # rows are stored at unit length
    index.replace(2, [[0, 0, 1, 0]])
    index.replace(1, [[0, 0, 0, 1]])  # the old block is dead, not counted
    assert index.centroid().tolist() == [0.0, 0.0, 0.5, 0.5]
    index.remove([2])
    assert index.centroid().tolist() == [0.0, 0.0, 0.0, 1.0]


def test_a_saved_index_opens_mapped_with_identical_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data = {cid: random_rows(rng, int(rng.integers(1, 6))) for cid in range(1, 120)}
    built = VectorIndex("fake", DIM)
    for cid, rows in data.items():
        built.replace(cid, rows)
    built.remove([7, 8])  # dead blocks are not written
    assert built.save(tmp_path / "fake") == sum(len(data[c]) for c in data if c not in (7, 8))

    mapped = VectorIndex("fake", DIM)
    mapped.open_file(tmp_path / "fake")
    assert isinstance(mapped._snapshot().base, np.memmap)
    assert mapped.unsaved_rows() == 0
    assert mapped.campaigns() == built.campaigns()
    queries = random_rows(rng, 5)
    assert mapped.search_many(queries, limit=30) == built.search_many(queries, limit=30)
    allowed = {3, 4, 50, 51}
    assert mapped.search(queries[0], limit=3, allowed=allowed) == built.search(
        queries[0], limit=3, allowed=allowed
    )
    np.testing.assert_array_equal(mapped.centroid(), built.centroid())


def test_writes_after_opening_a_file_go_beside_it_and_rank_like_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    data = {cid: random_rows(rng, 3) for cid in range(1, 60)}
    built = VectorIndex("fake", DIM)
    built.load(np.repeat(list(data), 3), np.concatenate(list(data.values())))
    built.save(tmp_path / "fake")
    mapped = VectorIndex("fake", DIM)
    mapped.open_file(tmp_path / "fake")
    for cid in range(50, 2000):  # past the tail's first capacity and the block arrays'
        rows = random_rows(rng, 2)
        data[cid] = rows
        mapped.replace(cid, rows)
    mapped.remove([1, 2])
    del data[1], data[2]
    state = mapped._snapshot()
    assert isinstance(state.base, np.memmap)  # still shared: few rows are dead
    assert mapped.unsaved_rows() == state.rows - len(state.base) > 0
    query = random_rows(rng, 1)[0]
    assert_same_ranking(mapped.search(query, limit=20), brute_force(data, query, 20))


def test_replacing_most_mapped_rows_moves_the_index_to_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    data = {cid: random_rows(rng, 2) for cid in range(1, 40)}
    built = VectorIndex("fake", DIM)
    for cid, rows in data.items():
        built.replace(cid, rows)
    built.save(tmp_path / "fake")
    mapped = VectorIndex("fake", DIM)
    mapped.open_file(tmp_path / "fake")
    for cid in range(1, 30):
        data[cid] = random_rows(rng, 2)
        mapped.replace(cid, data[cid])
    assert len(mapped._snapshot().base) == 0  # compacted: the dead mapped rows are gone
    query = random_rows(rng, 1)[0]
    assert_same_ranking(mapped.search(query, limit=10), brute_force(data, query, 10))


def test_a_file_of_another_dimension_is_refused(tmp_path: Path) -> None:
    built = VectorIndex("fake", DIM)
    built.replace(1, unit(1)[None])
    built.save(tmp_path / "fake")
    with pytest.raises(ValueError, match="expected float16 rows of 8"):
        VectorIndex("fake", 8).open_file(tmp_path / "fake")
