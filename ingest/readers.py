"""The registry of import formats: per format its label, extensions, sniffing and reader.

Everything that lists formats reads ``REGISTRY`` (the import page's labels and ``accept`` list,
the API's ``format`` parameter and its document, the CLI's ``--format`` choice, the docs table
checked by tests/test_docs.py). Adding a format is one ``FileFormat`` entry here (and its name in
``Format``), with its reader module.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePath
from typing import IO, Literal, Protocol

from ingest.encoding import detect_encoding
from ingest.errors import FileReadError
from ingest.jsonfile import JsonLinesReader, JsonReader
from ingest.markdown import MarkdownReader
from ingest.office import OfficeReader
from ingest.records import SourceRow
from ingest.tabular import CsvReader, XlsxReader

# Every registered name; the API and its document take exactly these (a test checks the set).
Format = Literal["json", "jsonl", "csv", "xlsx", "md", "docx", "pptx"]
SNIFF_BYTES = 64 * 1024


class Reader(Protocol):
    """What every reader offers: the rows, file-level warnings, and progress."""

    warnings: list[str]

    def rows(self) -> Iterator[SourceRow]: ...

    def position(self) -> tuple[int, int]: ...


class Head:
    """The start of a file, as sniffers look at it: its text, or its zip member names."""

    def __init__(self, binary: IO[bytes]) -> None:
        self._binary = binary
        start = binary.tell()
        self.raw = binary.read(SNIFF_BYTES)
        binary.seek(start)

    @property
    def is_zip(self) -> bool:
        return self.raw.startswith(b"PK")

    @cached_property
    def text(self) -> str:
        """The decoded start of a text file, without BOM and leading blanks ("" for a zip)."""
        if self.is_zip:
            return ""
        return self.raw.decode(detect_encoding(self.raw), errors="replace").lstrip("\ufeff \t\r\n")

    @cached_property
    def zip_names(self) -> list[str]:
        """The member names of a zip file ([] when it is none)."""
        if not self.is_zip:
            return []
        start = self._binary.tell()
        try:
            with zipfile.ZipFile(self._binary) as archive:
                return archive.namelist()
        except zipfile.BadZipFile:
            return []
        finally:
            self._binary.seek(start)


@dataclass(frozen=True)
class FileFormat:
    """One import format: how it is named and shown, recognised, and read."""

    name: Format
    label: str
    extensions: tuple[str, ...]
    # Whether a file's first bytes look like this format (None: recognised by extension only).
    sniff: Callable[[Head], bool] | None
    # Return the reader over a seekable binary stream; ``metrics`` only where takes_metrics.
    open: Callable[[IO[bytes], IO[bytes] | None, str], Reader]
    # Sniffed before formats with a lower rank: a narrower test first, a catch-all last.
    rank: int = 0
    # May be given a separate metrics sheet (CSV / Excel).
    takes_metrics: bool = False
    # One campaign per file (a retro document), not a list.
    single: bool = False
    # Formats a file with one of our extensions may turn out to be, checked by their sniff
    # (a ".json" file whose first line is a whole object and has more lines is JSON Lines).
    variants: tuple[Format, ...] = ()


def _is_jsonl(head: Head) -> bool:
    if not head.text.startswith("{"):
        return False
    lines = [line for line in head.text.splitlines() if line.strip()]
    try:
        first = json.loads(lines[0])
    except ValueError:
        return False
    return isinstance(first, dict) and len(lines) > 1


def _zip_with(prefix: str) -> Callable[[Head], bool]:
    return lambda head: any(name.startswith(prefix) for name in head.zip_names)


REGISTRY: dict[Format, FileFormat] = {
    f.name: f
    for f in (
        FileFormat(
            name="json",
            label="JSON",
            extensions=(".json",),
            sniff=lambda head: head.text.startswith(("[", "{")),
            open=lambda binary, metrics, filename: JsonReader(binary),
            variants=("jsonl",),
        ),
        FileFormat(
            name="jsonl",
            label="JSON Lines",
            extensions=(".jsonl", ".ndjson"),
            sniff=_is_jsonl,
            open=lambda binary, metrics, filename: JsonLinesReader(binary),
            rank=1,
        ),
        FileFormat(
            name="csv",
            label="CSV",
            extensions=(".csv", ".tsv", ".txt"),
            sniff=lambda head: bool(head.text),  # any other text: the catch-all
            open=lambda binary, metrics, filename: CsvReader(binary, metrics),
            rank=-1,
            takes_metrics=True,
        ),
        FileFormat(
            name="xlsx",
            label="Excel (.xlsx)",
            extensions=(".xlsx", ".xlsm"),
            sniff=_zip_with("xl/"),
            open=lambda binary, metrics, filename: XlsxReader(binary, metrics),
            takes_metrics=True,
        ),
        FileFormat(
            name="md",
            label="Markdown",
            extensions=(".md", ".markdown"),
            sniff=lambda head: head.text.startswith(("---", "#")),
            open=lambda binary, metrics, filename: MarkdownReader(binary),
            single=True,
        ),
        FileFormat(
            name="docx",
            label="Word (.docx)",
            extensions=(".docx",),
            sniff=_zip_with("word/"),
            open=lambda binary, metrics, filename: OfficeReader(
                binary, "docx", PurePath(filename).stem
            ),
            single=True,
        ),
        FileFormat(
            name="pptx",
            label="PowerPoint (.pptx)",
            extensions=(".pptx",),
            sniff=_zip_with("ppt/"),
            open=lambda binary, metrics, filename: OfficeReader(
                binary, "pptx", PurePath(filename).stem
            ),
            single=True,
        ),
    )
}

# Derived views of the registry, for the callers that want just names or labels.
FORMATS: tuple[Format, ...] = tuple(REGISTRY)
FORMAT_LABELS: dict[Format, str] = {name: f.label for name, f in REGISTRY.items()}
# The upload field's ``accept`` list and the formats that take a separate metrics sheet.
EXTENSIONS: tuple[str, ...] = tuple(e for f in REGISTRY.values() for e in f.extensions)
METRICS_FORMATS: tuple[Format, ...] = tuple(n for n, f in REGISTRY.items() if f.takes_metrics)
SINGLE_FORMATS: tuple[Format, ...] = tuple(n for n, f in REGISTRY.items() if f.single)
# Old binary Office formats: named, so the user is told what to do instead of "unknown format".
REFUSED = {".xls": "Excel 97-2003 (.xls)", ".doc": "Word 97-2003 (.doc)", ".ppt": "PPT (.ppt)"}
_BY_EXTENSION: dict[str, Format] = {e: f.name for f in REGISTRY.values() for e in f.extensions}
_SNIFF_ORDER = sorted(REGISTRY.values(), key=lambda f: -f.rank)


def format_named(value: str | None) -> Format | None:
    """Return the registered format of this name, or None (unknown or not given)."""
    return next((name for name in FORMATS if name == value), None)


def detect_format(filename: str, binary: IO[bytes]) -> Format:
    """Return the format of a file from its extension, or from its first bytes."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in REFUSED:
        raise FileReadError(f"不支持 {REFUSED[suffix]}：请另存为 .xlsx / .docx / .pptx 后再导入")
    head = Head(binary)
    found = _BY_EXTENSION.get(suffix)
    if found is not None:
        variant = next((v for v in REGISTRY[found].variants if _sniffs(v, head)), None)
        return variant or found
    for fmt in _SNIFF_ORDER:
        if fmt.sniff is not None and fmt.sniff(head):
            return fmt.name
    raise FileReadError("无法识别文件格式：支持 " + "、".join(FORMAT_LABELS.values()))


def _sniffs(name: Format, head: Head) -> bool:
    sniff = REGISTRY[name].sniff
    return sniff is not None and sniff(head)


def open_reader(
    fmt: Format, binary: IO[bytes], *, metrics: IO[bytes] | None = None, filename: str = ""
) -> Reader:
    """Return the reader of ``fmt`` over ``binary`` (a seekable binary stream)."""
    spec = REGISTRY[fmt]
    if metrics is not None and not spec.takes_metrics:
        names = " 和 ".join(REGISTRY[n].label.split(" ")[0] for n in METRICS_FORMATS)
        raise FileReadError(f"只有 {names} 可以附带单独的指标表")
    return spec.open(binary, metrics, filename)
