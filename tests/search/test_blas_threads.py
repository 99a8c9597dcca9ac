"""A vector index caps NumPy's BLAS at one thread: its threads wait for each other on a busy box."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits  # type: ignore[import-untyped]

from search import vector
from search.vector import VectorIndex


def test_a_vector_index_leaves_blas_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    if not any(info["user_api"] == "blas" for info in threadpool_info()):
        pytest.skip("NumPy links no BLAS that threadpoolctl can see")
    monkeypatch.setattr(vector, "_blas_limited", False)
    with threadpool_limits(limits=2, user_api="blas"):  # restored on leaving
        VectorIndex("m", 4)
        threads = {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}
        assert threads == {1}
