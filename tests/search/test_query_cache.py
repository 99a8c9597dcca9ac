"""The query-vector cache: bounded, least recently used out first, keyed by normalized text."""

from __future__ import annotations

import numpy as np
import pytest

from search.embedder import FakeEmbedder, QueryCache, Vectors, normalize_query, query_cache


class CountingEmbedder(FakeEmbedder):
    """A fake that records every text it was asked to encode."""

    def __init__(self) -> None:
        super().__init__(name="counting", dim=16)
        self.encoded: list[str] = []

    def encode_queries(self, texts: list[str]) -> Vectors:
        self.encoded.extend(texts)
        return super().encode_queries(texts)


def test_normalize_query_folds_only_what_models_cannot_see() -> None:
    assert normalize_query("  拼团\u3000 宝妈\n") == "拼团 宝妈"
    assert normalize_query("e\u0301") == "\u00e9"  # NFC
    assert normalize_query("ROI（低）") == "ROI（低）"  # full-width kept: NFKC would change it
    assert normalize_query("Coupon") != normalize_query("coupon")


def test_a_repeated_query_is_encoded_once_and_equals_a_fresh_encoding() -> None:
    embedder = CountingEmbedder()
    cache = QueryCache(embedder, maxsize=8)
    first = cache.encode("拼团 宝妈")
    again = cache.encode(" 拼团   宝妈 ")
    assert embedder.encoded == ["拼团 宝妈"]
    assert again is first
    np.testing.assert_array_equal(first, FakeEmbedder(dim=16).encode_queries(["拼团 宝妈"])[0])
    assert (cache.hits, cache.misses) == (1, 1)
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 0.0  # shared between requests: nobody may change it


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    embedder = CountingEmbedder()
    cache = QueryCache(embedder, maxsize=2)
    cache.encode("a")
    cache.encode("b")
    cache.encode("a")  # "b" is now the oldest
    cache.encode("c")
    assert len(cache) == 2
    cache.encode("a")
    cache.encode("b")  # dropped: encoded again
    assert embedder.encoded == ["a", "b", "c", "b"]


def test_size_zero_caches_nothing() -> None:
    embedder = CountingEmbedder()
    cache = QueryCache(embedder, maxsize=0)
    cache.encode("a")
    cache.encode("a")
    assert embedder.encoded == ["a", "a"]
    assert len(cache) == 0


def test_one_cache_per_model() -> None:
    first, second = CountingEmbedder(), CountingEmbedder()
    assert query_cache(first) is query_cache(first)
    assert query_cache(first) is not query_cache(second)
