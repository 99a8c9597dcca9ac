"""Pick the reader for a file: by the format asked for, else by its name, else by its first bytes."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import PurePath
from typing import IO, Literal, Protocol, get_args

from ingest.encoding import detect_encoding
from ingest.errors import FileReadError
from ingest.jsonfile import JsonLinesReader, JsonReader
from ingest.markdown import MarkdownReader
from ingest.office import OfficeReader
from ingest.records import SourceRow
from ingest.tabular import CsvReader, XlsxReader

Format = Literal["json", "jsonl", "csv", "xlsx", "md", "docx", "pptx"]
FORMATS: tuple[Format, ...] = get_args(Format)
FORMAT_LABELS: dict[Format, str] = {
    "json": "JSON",
    "jsonl": "JSON Lines",
    "csv": "CSV",
    "xlsx": "Excel (.xlsx)",
    "md": "Markdown",
    "docx": "Word (.docx)",
    "pptx": "PowerPoint (.pptx)",
}
_EXTENSIONS: dict[str, Format] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".md": "md",
    ".markdown": "md",
    ".docx": "docx",
    ".pptx": "pptx",
}
_OLD_OFFICE = {".xls": "Excel 97-2003 (.xls)", ".doc": "Word 97-2003 (.doc)", ".ppt": "PPT (.ppt)"}


class Reader(Protocol):
    """What every reader offers: the rows, file-level warnings, and progress."""

    warnings: list[str]

    def rows(self) -> Iterator[SourceRow]: ...

    def position(self) -> tuple[int, int]: ...


def detect_format(filename: str, binary: IO[bytes]) -> Format:
    """Return the format of a file from its extension, or from its first bytes."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in _OLD_OFFICE:
        raise FileReadError(
            f"不支持 {_OLD_OFFICE[suffix]}：请另存为 .xlsx / .docx / .pptx 后再导入"
        )
    start = binary.tell()
    head = binary.read(64 * 1024)
    binary.seek(start)
    found = _EXTENSIONS.get(suffix)
    if found == "json" or (found is None and not head.startswith(b"PK")):
        found = _sniff_text(head) if found is None else _json_or_lines(head)
    if found is None and head.startswith(b"PK"):
        found = _sniff_zip(binary)
    if found is None:
        raise FileReadError("无法识别文件格式：支持 " + "、".join(FORMAT_LABELS.values()))
    return found


def _sniff_text(head: bytes) -> Format | None:
    text = head.decode(detect_encoding(head), errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("---"):
        return "md"
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        return _json_or_lines(head)
    if text.startswith("#"):
        return "md"
    return "csv" if text else None


def _json_or_lines(head: bytes) -> Format:
    """A .json file whose first line is a whole object and has more lines is JSON Lines."""
    text = head.decode(detect_encoding(head), errors="replace").lstrip("\ufeff \t\r\n")
    if not text.startswith("{"):
        return "json"
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        first = json.loads(lines[0])
    except ValueError:
        return "json"
    return "jsonl" if isinstance(first, dict) and len(lines) > 1 else "json"


def _sniff_zip(binary: IO[bytes]) -> Format | None:
    start = binary.tell()
    try:
        with zipfile.ZipFile(binary) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return None
    finally:
        binary.seek(start)
    for prefix, fmt in (("xl/", "xlsx"), ("word/", "docx"), ("ppt/", "pptx")):
        if any(name.startswith(prefix) for name in names):
            return fmt  # type: ignore[return-value]
    return None


def open_reader(
    fmt: Format, binary: IO[bytes], *, metrics: IO[bytes] | None = None, filename: str = ""
) -> Reader:
    """Return the reader of ``fmt`` over ``binary`` (a seekable binary stream)."""
    if metrics is not None and fmt not in ("csv", "xlsx"):
        raise FileReadError("只有 CSV 和 Excel 可以附带单独的指标表")
    if fmt == "csv":
        return CsvReader(binary, metrics)
    if fmt == "xlsx":
        return XlsxReader(binary, metrics)
    if fmt == "json":
        return JsonReader(binary)
    if fmt == "jsonl":
        return JsonLinesReader(binary)
    if fmt == "md":
        return MarkdownReader(binary)
    return OfficeReader(binary, fmt, PurePath(filename).stem)
