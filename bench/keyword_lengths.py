"""The keyword index's field lengths: read per document (Whoosh) against a column at a time.

A fresh worker's first ranked keyword search reads every segment's field lengths (BM25 needs
them). Usage: ``python bench/keyword_lengths.py INDEX_DIR``, a Whoosh index directory such as a
kept search_bench data directory's ``index/keyword/<generation>``. Checks both reads agree, then
prints the median CPU of three reads each, the two ways interleaved.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from whoosh import index as whoosh_index  # after the path setup

from search.keyword.columns import segment_field_lengths
from search.keyword.fields import TEXT_FIELDS

Lengths = list[npt.NDArray[np.float64]]


def per_document(leaves: list[Any]) -> Lengths:
    """As columns.py read them before session 9: one Whoosh call per document and field."""
    return [
        np.array(
            [
                [leaf.doc_field_length(d, name) or 0 for d in range(leaf.doc_count_all())]
                for name in TEXT_FIELDS
            ],
            dtype=np.float64,
        )
        for leaf in leaves
    ]


def by_column(leaves: list[Any]) -> Lengths:
    """As columns.py reads them now: each field's lengths column in one read."""
    return [
        np.array(
            [segment_field_lengths(leaf._perdoc, n, leaf.doc_count_all()) for n in TEXT_FIELDS],
            dtype=np.float64,
        )
        for leaf in leaves
    ]


def main() -> None:
    reader = whoosh_index.open_dir(sys.argv[1]).reader()
    leaves = [leaf for leaf, _ in reader.leaf_readers()]
    docs = sum(leaf.doc_count_all() for leaf in leaves)
    same = zip(per_document(leaves), by_column(leaves), strict=True)
    assert all(np.array_equal(a, b) for a, b in same), "the two reads differ"
    times: dict[str, list[float]] = {"per document": [], "a column at a time": []}
    for _ in range(3):
        for name, read in (("per document", per_document), ("a column at a time", by_column)):
            started = time.process_time()
            read(leaves)
            times[name].append(time.process_time() - started)
    print(f"{docs} documents, {len(leaves)} segments, {len(TEXT_FIELDS)} text fields")
    for name, spent in times.items():
        print(f"  {name:<20} median CPU {statistics.median(spent) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
