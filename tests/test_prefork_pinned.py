"""The gunicorn master keeps the relevance floor's pinned vectors in the models directory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from kb import prefork
from search.embedder import SentenceTransformerEmbedder

TEXTS = ["会员日满减", "win back lapsed buyers", "沉睡用户召回"]


class HashModel:
    """A stand-in sentence-transformers model: a text's vector from its hash (and a seed)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.prompts = {"query": "query: ", "passage": "passage: "}
        self.encoded: list[str] = []

    def encode(self, sentences: list[str], *, prompt: str, **_: Any) -> np.ndarray[Any, Any]:
        self.encoded += sentences
        rows = []
        for text in sentences:
            digest = hashlib.sha256(f"{self.seed}{prompt}{text}".encode()).digest()
            rows.append(np.frombuffer(digest, dtype=np.uint8)[:8].astype(np.float32) + 1)
        return np.stack(rows)


def embedder(model: HashModel) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("m", lambda: model, dim=8)  # type: ignore[arg-type,return-value]


def test_pinned_vectors_are_kept_and_read_back(tmp_path: Path) -> None:
    first_model = HashModel(seed=1)
    first = embedder(first_model)
    assert prefork._pin(first, TEXTS, tmp_path).startswith("m encoded")
    assert set(TEXTS) <= set(first_model.encoded)
    kept = list(tmp_path.glob("m-*.npz"))
    assert len(kept) == 1

    # The next start: the same model reads them and encodes only its two probes.
    second_model = HashModel(seed=1)
    second = embedder(second_model)
    assert prefork._pin(second, TEXTS, tmp_path).startswith("m read")
    assert second_model.encoded == [prefork._PROBE, prefork._PROBE]
    assert np.array_equal(second.encode_queries(TEXTS), first.encode_queries(TEXTS))
    assert np.array_equal(second.encode_passages(TEXTS[::-1]), first.encode_passages(TEXTS[::-1]))
    assert len(second_model.encoded) == 2  # pinned: the model did not run again

    # Another model (its probe differs) or other texts: encoded again, the old file replaced.
    other_model = HashModel(seed=2)
    assert prefork._pin(embedder(other_model), TEXTS, tmp_path).startswith("m encoded")
    assert list(tmp_path.glob("m-*.npz")) != kept
    assert len(list(tmp_path.glob("m-*.npz"))) == 1
    assert prefork._pin(embedder(HashModel(seed=2)), TEXTS[:2], tmp_path).startswith("m encoded")


def test_damaged_kept_vectors_are_encoded_again(tmp_path: Path) -> None:
    prefork._pin(embedder(HashModel(seed=1)), TEXTS, tmp_path)
    (path,) = tmp_path.glob("m-*.npz")
    path.write_bytes(b"not a zip")
    model = HashModel(seed=1)
    assert prefork._pin(embedder(model), TEXTS, tmp_path).startswith("m encoded")
    assert set(TEXTS) <= set(model.encoded)
    # A file of the wrong shape (another text count under the same name) is not used either.
    np.savez(path, queries=np.zeros((1, 8), np.float32), passages=np.zeros((1, 8), np.float32))
    assert prefork._read_pinned(path, len(TEXTS), 8) is None
