"""The PostgreSQL fixture empties every table between tests: a table missing from the list would
carry one test's rows into the next."""

from __future__ import annotations

from kb.extensions import db
from tests.conftest import TABLES


def test_every_table_of_the_models_is_emptied_between_tests() -> None:
    assert set(TABLES) == set(db.metadata.tables)
