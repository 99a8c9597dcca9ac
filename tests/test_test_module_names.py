"""Test modules need unique file names: the test folders have no ``__init__.py``, so pytest
imports each module by its base name and refuses a second one with the same name, which stops
the whole run at collection (session 6: two ``test_home.py``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent


def test_every_test_module_has_a_unique_file_name() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
