"""The keyword index's field lengths, read a column at a time, equal Whoosh's per-document reads.

A fresh worker's first ranked search reads every segment's field lengths (BM25 needs them):
once per document and field through Whoosh that was ≈ 2.5 s at 30,000 campaigns. The index is
the fast-path tests' one: the demo corpus eight times over, several segments, deletions.
"""

from __future__ import annotations

import numpy as np

from search.keyword import KeywordIndex
from search.keyword.columns import segment_field_lengths
from search.keyword.fields import TEXT_FIELDS
from tests.search.test_keyword_fastpath import index  # noqa: F401  # the fixture


def per_document(leaf: object, name: str) -> list[int]:
    docs = range(leaf.doc_count_all())  # type: ignore[attr-defined]
    return [leaf.doc_field_length(d, name) or 0 for d in docs]  # type: ignore[attr-defined]


def test_lengths_equal_whoosh_per_document_reads(index: KeywordIndex) -> None:  # noqa: F811
    snapshot = index._current()
    assert snapshot is not None
    reader = snapshot.searcher.reader()
    expected = []
    for leaf, _ in reader.leaf_readers():
        expected.append(np.array([per_document(leaf, name) for name in TEXT_FIELDS]))
        for name in TEXT_FIELDS:
            found = segment_field_lengths(leaf._perdoc, name, leaf.doc_count_all())
            assert found.tolist() == per_document(leaf, name)
    assert len(expected) >= 3  # several segments, one with deletions (the fixture's checks)
    lengths = snapshot.field_lengths()
    np.testing.assert_array_equal(lengths, np.concatenate(expected, axis=1))
    assert lengths.any()


def test_a_field_no_document_has_reads_as_zeros(index: KeywordIndex) -> None:  # noqa: F811
    snapshot = index._current()
    assert snapshot is not None
    leaf, _ = next(iter(snapshot.searcher.reader().leaf_readers()))
    found = segment_field_lengths(leaf._perdoc, "no_such_field", leaf.doc_count_all())
    assert found.tolist() == [0] * leaf.doc_count_all()
