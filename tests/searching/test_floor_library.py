"""The relevance floor's library texts: embedded once per host and model, kept in the data dir."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from flask import Flask

from kb.extensions import db
from kb.models import Campaign
from kb.searching import floor
from kb.searching.documents import campaign_text
from search.embedder import FakeEmbedder, Vectors
from search.relevance import library_queries


class CountingEmbedder(FakeEmbedder):
    """A fake model that counts the query texts it encodes."""

    def __init__(self, name: str = "fake", dim: int = 64) -> None:
        super().__init__(name, dim)
        self.encoded: list[str] = []

    def encode_queries(self, texts: list[str]) -> Vectors:
        self.encoded.extend(texts)
        return super().encode_queries(texts)


def _embed(tmp_path: Path, texts: list[str], model: Any) -> Any:
    """Run one library embedding for these texts in a fresh process state; return the state
    with the rows it returned as ``library``."""
    state = floor._FloorState()
    indexes: Any = SimpleNamespace(data_dir=tmp_path)
    library = floor._embed_library(state, indexes, [model], list(texts))
    return SimpleNamespace(library=library, library_vectors=state.library_vectors)


def test_a_second_process_reads_the_vectors_instead_of_embedding_them(
    tmp_path: Path,
) -> None:
    texts = ["拼团门槛要低于三人", "宝妈群转发率最高", "团长佣金结算晚了两周"]
    first = CountingEmbedder()
    state = _embed(tmp_path, texts, first)
    assert first.encoded == texts
    assert state.library["fake"].shape == (3, 64)
    second = CountingEmbedder()  # another worker of the host, or the next start
    again = _embed(tmp_path, texts, second)
    assert second.encoded == []
    np.testing.assert_allclose(again.library["fake"], state.library["fake"], atol=1e-6)


def test_only_new_texts_are_embedded_and_old_ones_are_dropped(
    tmp_path: Path,
) -> None:
    _embed(tmp_path, ["拼团门槛要低于三人", "宝妈群转发率最高"], CountingEmbedder())
    model = CountingEmbedder()
    state = _embed(tmp_path, ["宝妈群转发率最高", "新人红包要接设备指纹"], model)
    assert model.encoded == ["新人红包要接设备指纹"]
    assert list(state.library_vectors["fake"]) == ["宝妈群转发率最高", "新人红包要接设备指纹"]
    stored = floor._read_library(tmp_path / "relevance" / "library-fake-64.npz", 64)
    assert list(stored) == ["宝妈群转发率最高", "新人红包要接设备指纹"]


def test_a_file_of_another_size_or_a_broken_one_is_embedded_again(
    tmp_path: Path,
) -> None:
    texts = ["拼团门槛要低于三人"]
    _embed(tmp_path, texts, CountingEmbedder(dim=32))
    other_size = CountingEmbedder(dim=64)  # another model under the same name: its own file
    _embed(tmp_path, texts, other_size)
    assert other_size.encoded == texts
    path = tmp_path / "relevance" / "library-fake-64.npz"
    path.write_bytes(b"not an npz file")
    broken = CountingEmbedder(dim=64)
    state = _embed(tmp_path, texts, broken)
    assert broken.encoded == texts
    assert state.library["fake"].shape == (1, 64)
    assert list(floor._read_library(path, 64)) == texts  # written anew


def test_no_library_texts_give_an_empty_library(
    tmp_path: Path,
) -> None:
    model = CountingEmbedder()
    state = _embed(tmp_path, [], model)
    assert state.library["fake"].shape == (0, 64)
    assert model.encoded == []


def test_library_texts_are_read_again_only_for_changed_campaigns(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb.demo import load_demo

    with app.app_context():
        assert not load_demo().rejected
        ids = sorted(db.session.scalars(sa.select(Campaign.id)))
        index: Any = SimpleNamespace(campaigns=lambda: set(ids))
        indexes: Any = SimpleNamespace(vectors={"fake": index})
        loaded: list[list[int]] = []
        real = floor.load_live

        def counting(campaign_ids: list[int]) -> list[Campaign]:
            loaded.append(sorted(campaign_ids))
            return real(campaign_ids)

        monkeypatch.setattr(floor, "load_live", counting)
        state = floor._FloorState()
        first = floor._library_texts(state, indexes, ["fake"])
        assert loaded == [ids]
        in_order = sorted(real(ids), key=lambda c: c.id)  # the old path: every campaign, by id
        assert first == library_queries(campaign_text(c) for c in in_order)

        loaded.clear()  # nothing written: no campaign is read again
        assert floor._library_texts(state, indexes, ["fake"]) == first
        assert loaded == []

        edited = db.session.get(Campaign, ids[0])
        assert edited is not None
        edited.lessons = "- 拼团门槛从三人降到两人后成团率翻倍"
        db.session.commit()  # bumps the version
        second = floor._library_texts(state, indexes, ["fake"])
        assert loaded == [[ids[0]]]
        assert "拼团门槛从三人降到两人后成团率翻倍" in second
        assert second == floor._library_texts(floor._FloorState(), indexes, ["fake"])

        loaded.clear()
        gone = db.session.get(Campaign, ids[1])
        assert gone is not None
        gone.deleted_at = datetime.now(UTC)
        db.session.commit()
        floor._library_texts(state, indexes, ["fake"])
        assert loaded == []  # a deletion reads nothing
        assert ids[1] not in state.campaign_texts
