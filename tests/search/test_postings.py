"""Tests for reading Whoosh postings and numbers into arrays: they must equal Whoosh's matchers."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from whoosh import fields
from whoosh.filedb.filestore import RamStorage

from search.postings import numeric_values, term_docs, term_postings

WORDS = [f"w{i}" for i in range(40)]


@pytest.fixture(scope="module")
def index() -> Any:
    """Return a Whoosh index of 700 documents in three segments, with deletions."""
    schema = fields.Schema(
        key=fields.ID(stored=True, unique=True),
        body=fields.TEXT(phrase=False),
        day=fields.NUMERIC(int, stored=True),
        ratio=fields.NUMERIC(float, bits=64, stored=True),
    )
    ix = RamStorage().create_index(schema)
    rng = random.Random(7)  # noqa: S311  # test data, not secrets
    for segment in range(3):
        writer = ix.writer()
        for n in range(segment * 300, segment * 300 + (300 if segment < 2 else 100)):
            # Skewed word counts: common words span many 128-posting blocks, rare ones one
            # posting (inlined in the term info), and frequencies (weights) vary.
            words = rng.choices(WORDS, weights=[1 / (i + 1) for i in range(len(WORDS))], k=30)
            if n % 50 == 1:
                words.append(f"solo{n}")  # a term in one document: Whoosh inlines it
            values: dict[str, Any] = {"key": str(n), "body": " ".join(words)}
            if n % 3:
                values["day"] = 20230000 + rng.randint(101, 1231)
                values["ratio"] = rng.uniform(-5, 5)
            writer.add_document(**values)
        writer.commit(merge=False)
    writer = ix.writer()
    for n in range(0, 700, 7):
        writer.delete_by_term("key", str(n))
    writer.commit(merge=False)
    return ix


def whoosh_postings(searcher: Any, field: str, btext: bytes) -> tuple[list[int], list[float]]:
    """Walk Whoosh's own matcher (deleted documents skipped)."""
    docs, weights = [], []
    matcher = searcher.postings(field, btext)
    while matcher.is_active():
        docs.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return docs, weights


def test_postings_equal_whoosh_matchers(index: Any) -> None:
    with index.searcher() as searcher:
        reader = searcher.reader()
        assert len(reader.leaf_readers()) >= 3
        live = np.zeros(reader.doc_count_all(), dtype=np.bool_)
        live[list(reader.all_doc_ids())] = True
        terms = list(reader.lexicon("body"))
        assert len(terms) > 30
        for btext in terms:
            docs, weights = term_postings(reader, "body", btext)
            keep = live[docs]
            expected_docs, expected_weights = whoosh_postings(searcher, "body", btext)
            assert docs[keep].tolist() == expected_docs
            np.testing.assert_allclose(weights[keep], expected_weights)
            assert term_docs(reader, "body", btext).tolist() == docs.tolist()
        assert len(term_postings(reader, "body", b"absent")[0]) == 0
        assert len(term_postings(reader, "nofield", b"w1")[0]) == 0


def test_numeric_values_equal_stored_fields(index: Any) -> None:
    with index.searcher() as searcher:
        reader = searcher.reader()
        for name in ("day", "ratio"):
            values = np.concatenate(
                [numeric_values(leaf, name) for leaf, _ in reader.leaf_readers()]
            )
            for docnum in reader.all_doc_ids():
                stored = reader.stored_fields(docnum).get(name)
                if stored is None:
                    assert np.isnan(values[docnum])
                else:
                    assert values[docnum] == stored
        first = reader.leaf_readers()[0][0]
        assert np.isnan(numeric_values(first, "nofield")).all()
