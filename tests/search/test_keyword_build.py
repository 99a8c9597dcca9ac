"""Building the keyword index: no file check per posting, the same index as Whoosh builds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from whoosh.codec import whoosh3
from whoosh.filedb.filestore import FileStorage

from search.keyword import KeywordIndex
from tests.search.test_keyword import DOCS, NO_FILTERS


def whoosh_cached_reader(self: Any, fieldname: str, column: Any) -> Any:
    """Return what whoosh-reloaded 2.7.5's own ``_cached_reader`` returns (absence not kept)."""
    if fieldname in self._readers:
        return self._readers[fieldname]
    if not self.has_column(fieldname):
        return None
    reader = self.column_reader(fieldname, column)
    self._readers[fieldname] = reader
    return reader


def many(copies: int) -> list[Any]:
    """Return DOCS repeated under fresh ids."""
    return [dataclasses.replace(doc, id=doc.id + 100 * n) for n in range(copies) for doc in DOCS]


@contextmanager
def counted_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count the index files' existence checks made in the block (in the one-item list)."""
    checks = [0]
    original = FileStorage.file_exists

    def counting(self: FileStorage, name: str) -> bool:
        checks[0] += 1
        return bool(original(self, name))

    monkeypatch.setattr(FileStorage, "file_exists", counting)
    try:
        yield checks
    finally:
        monkeypatch.setattr(FileStorage, "file_exists", original)


def file_checks(directory: Path, docs: list[Any], monkeypatch: pytest.MonkeyPatch) -> int:
    """Rebuild ``docs`` under ``directory``; return how many file-existence checks it made."""
    with counted_checks(monkeypatch) as checks, KeywordIndex(directory) as index:
        index.rebuild(docs)
    return checks[0]


def test_a_rebuild_checks_a_missing_column_once_not_per_posting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    few = file_checks(tmp_path / "few", many(1), monkeypatch)
    more = file_checks(tmp_path / "more", many(8), monkeypatch)
    assert more == few  # per field, not per posting


def search_checks(directory: Path, docs: list[Any], monkeypatch: pytest.MonkeyPatch) -> int:
    """Build ``docs`` under ``directory``; return the file checks of a first search on it."""
    with KeywordIndex(directory) as index:
        index.rebuild(docs)
    with counted_checks(monkeypatch) as checks, KeywordIndex(directory) as index:
        assert index.search("直播 预售", filters=NO_FILTERS, limit=20).hits
    return checks[0]


def test_a_first_search_checks_a_missing_column_once_not_per_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The search reads the field lengths once per segment (search/keyword/columns.py); fields
    # no document has (went_well, documents…) have no lengths column.
    few = search_checks(tmp_path / "few", many(1), monkeypatch)
    more = search_checks(tmp_path / "more", many(8), monkeypatch)
    assert more == few
    # A column at a time (segment_field_lengths), so even Whoosh's own reader, which does not
    # remember an absent column, is asked once per field, not once per document.
    monkeypatch.setattr(whoosh3.W3PerDocReader, "_cached_reader", whoosh_cached_reader)
    assert search_checks(tmp_path / "whoosh", many(8), monkeypatch) == more


@pytest.mark.parametrize("text", ["直播 预售", "会员 复购", "优惠 叠加", "社群 秒杀"])
def test_the_index_searches_as_whoosh_built_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    docs = many(3)
    with KeywordIndex(tmp_path / "ours") as ours:
        ours.rebuild(docs)
        expected = ours.search(text, filters=NO_FILTERS, limit=50, facets=True)
    monkeypatch.setattr(whoosh3.W3PerDocReader, "_cached_reader", whoosh_cached_reader)
    with KeywordIndex(tmp_path / "whoosh") as theirs:
        theirs.rebuild(docs)
        assert theirs.search(text, filters=NO_FILTERS, limit=50, facets=True) == expected
    assert expected.hits
