"""Integration fixtures: the real embedding models, loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

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
