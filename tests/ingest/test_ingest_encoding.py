"""UTF-8, UTF-8 with BOM, UTF-16 and GB18030/GBK files all read right, in every text format."""

from __future__ import annotations

import io
import json

import pytest

from ingest.encoding import detect_encoding, text_stream
from ingest.readers import detect_format, open_reader

TEXT = (
    "活动名称,行业,目标类型,开始日期,结束日期\n宝妈拼团 夏季囤货,母婴,裂变,2024-06-01,2024-06-20\n"
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (TEXT.encode("utf-8-sig"), "utf-8-sig"),
        (TEXT.encode("gbk"), "gb18030"),
        (TEXT.encode("gb18030"), "gb18030"),
        (TEXT.encode("utf-16"), "utf-16"),
        (b"plain ascii", "utf-8"),
    ],
)
def test_detect_encoding(data: bytes, expected: str) -> None:
    assert detect_encoding(data) == expected


def test_a_sample_cut_inside_a_character_is_still_utf8() -> None:
    assert detect_encoding("活动".encode()[:4]) == "utf-8"


def _read(name: str, data: bytes) -> list[dict[str, object]]:
    binary = io.BytesIO(data)
    reader = open_reader(detect_format(name, binary), binary, filename=name)
    return [row.data or {} for row in reader.rows()]


RECORD = {
    "title": "宝妈拼团 夏季囤货（繁體：媽媽團購）",
    "industry": "母婴",
    "department": "社群运营组",
    "goal_type": "referral",
    "start_date": "2024-06-01",
    "end_date": "2024-06-20",
}
MARKDOWN = (
    "---\n"
    + "\n".join(f"{k}: {v}" for k, v in RECORD.items())
    + "\n---\n\n## 经验\n\n团长要先预热。\n"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("a.csv", ",".join(RECORD) + "\n" + ",".join(RECORD.values()) + "\n"),
        ("a.jsonl", json.dumps(RECORD, ensure_ascii=False) + "\n"),
        ("a.json", json.dumps([RECORD], ensure_ascii=False)),
        ("a.md", MARKDOWN),
    ],
)
def test_every_text_format_reads_every_encoding(name: str, text: str, encoding: str) -> None:
    (data,) = _read(name, text.encode(encoding))
    assert {k: data[k] for k in RECORD} == RECORD


def test_utf8_with_a_stray_byte_stays_utf8_and_only_that_byte_is_lost() -> None:
    rows = "活动名称,行业\n" + "会员日活动第1期,美妆\n" * 5
    data = rows.encode() + b"bad\xff,x\n"
    assert detect_encoding(data) == "utf-8"  # was GB18030: every row turned to mojibake
    with text_stream(io.BytesIO(data)) as text:
        read = text.read()
    assert read.startswith(rows)
    assert "bad\ufffd,x" in read


def test_gbk_with_a_few_utf8_characters_stays_gbk() -> None:
    text = "活动名称,行业\n会员日活动第1期,美妆\n" * 5
    assert detect_encoding(text.encode("gbk") + "新".encode()) == "gb18030"
    assert detect_encoding(text.encode("gbk")) == "gb18030"
