"""The import-format registry: names, extensions, sniffing and readers in one place."""

from __future__ import annotations

import io
from pathlib import Path
from typing import get_args

import pytest

from ingest.errors import FileReadError
from ingest.readers import (
    EXTENSIONS,
    FORMATS,
    METRICS_FORMATS,
    REGISTRY,
    Format,
    detect_format,
    format_named,
    open_reader,
)

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = {
    "campaigns.json": "json",
    "campaigns.jsonl": "jsonl",
    "campaigns_main.csv": "csv",
    "campaigns_gbk.csv": "csv",
    "retro_618.md": "md",
    "retro_merged_header.xlsx": "xlsx",
    "retro_double11.docx": "docx",
    "retro_deck.pptx": "pptx",
}


def test_the_format_type_names_exactly_the_registered_formats() -> None:
    assert set(get_args(Format)) == set(REGISTRY) == set(FORMATS)
    assert all(name == spec.name for name, spec in REGISTRY.items())


def test_every_extension_belongs_to_one_format() -> None:
    assert len(EXTENSIONS) == len(set(EXTENSIONS))
    assert all(ext.startswith(".") and ext == ext.lower() for ext in EXTENSIONS)


@pytest.mark.parametrize(("name", "fmt"), SAMPLES.items())
def test_each_sample_is_recognised_by_its_extension(name: str, fmt: str) -> None:
    with (DATA / name).open("rb") as binary:
        assert detect_format(name, binary) == fmt
        assert binary.tell() == 0  # sniffing leaves the stream where it was


@pytest.mark.parametrize(("name", "fmt"), SAMPLES.items())
def test_each_sample_is_recognised_by_its_content_alone(name: str, fmt: str) -> None:
    binary = io.BytesIO((DATA / name).read_bytes())
    assert detect_format("upload", binary) == fmt


def test_a_json_file_holding_json_lines_is_json_lines() -> None:
    lines = b'{"title": "a"}\n{"title": "b"}\n'
    assert detect_format("export.json", io.BytesIO(lines)) == "jsonl"
    assert detect_format("export.json", io.BytesIO(b'{"items": []}')) == "json"


@pytest.mark.parametrize("name", ["old.xls", "old.doc", "old.ppt"])
def test_old_office_files_are_refused_with_what_to_do(name: str) -> None:
    with pytest.raises(FileReadError, match="另存为"):
        detect_format(name, io.BytesIO(b"\xd0\xcf\x11\xe0"))


def test_an_unknown_file_names_the_registered_formats() -> None:
    with pytest.raises(FileReadError) as caught:
        detect_format("blank", io.BytesIO(b"   \n"))
    assert all(spec.label in caught.value.message for spec in REGISTRY.values())


def test_only_registered_formats_take_a_metrics_sheet() -> None:
    assert set(METRICS_FORMATS) == {"csv", "xlsx"}
    with pytest.raises(FileReadError, match="只有 CSV 和 Excel 可以附带单独的指标表"):
        open_reader("json", io.BytesIO(b"[]"), metrics=io.BytesIO(b""))


def test_format_named_accepts_registered_names_only() -> None:
    assert format_named("csv") == "csv"
    assert format_named("xls") is None
    assert format_named(None) is None
