"""Integration fixtures: the real embedding models, loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

# Converted models are cached here between runs (ignored by git), like tests/search does.
MODELS_DIR = Path(__file__).resolve().parent.parent / ".cache" / "models"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app on the demo data, indexed with the real models (built once: ≈ 30 s)."""
    from bench.eval_search import make_app

    return make_app(tmp_path_factory.mktemp("demo"), "e5,use", models_dir=MODELS_DIR)
