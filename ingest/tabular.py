"""Read campaigns from CSV and Excel sheets: one row per campaign, streamed row by row.

The header is found among the first rows (a title banner above it is skipped), with a group row
above it for metrics under merged cells. Blank rows are skipped but counted, so the row numbers
in a report are the ones the spreadsheet shows. Metrics may also come from a second sheet
(指标 / metrics) or a second file, keyed by campaign row, external_id or title.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import IO, Any

import openpyxl

from ingest.columns import (
    METRIC_SHEET_NAMES,
    Column,
    cell_text,
    find_header,
    fold,
    match_name,
    read_header,
)
from ingest.encoding import text_stream
from ingest.errors import FileReadError
from ingest.limits import bounded_rows, check_zip
from ingest.records import MetricRows, SourceRow, record_from_cells
from kb.vocab import field_label

HEADER_SEARCH_ROWS = 10
# Values left empty (not numbers) named one by one in the file's warnings; beyond, only counted.
MAX_VALUE_WARNINGS = 500
CSV_FIELD_LIMIT = 16 * 1024 * 1024
Row = tuple[int, list[Any]]


def _blank_row(values: Iterable[Any]) -> bool:
    return all(cell_text(v) == "" for v in values)


class _Sheet:
    """The rows of one sheet or CSV file, numbered from 1, with the first few kept to find the header."""

    def __init__(self, rows: Iterable[list[Any]], label: str) -> None:
        numbered = enumerate(rows, start=1)
        self.head: list[Row] = list(islice(numbered, HEADER_SEARCH_ROWS))
        self._rest = numbered
        self.label = label

    def campaign_columns(self) -> tuple[int, list[Column]]:
        """Find the campaign header; return its position in ``head`` and its columns."""
        found = find_header([values for _, values in self.head])
        if found is None:
            raise FileReadError(
                f"{self.label}找不到表头：前 {HEADER_SEARCH_ROWS} 行中应有一行列名，"
                "如 活动名称、行业、目标类型、开始日期（见列名对照表）"
            )
        above = self.head[found - 1][1] if found > 0 else None
        return found, read_header(self.head[found][1], above)

    def rows_after(self, position: int) -> Iterator[Row]:
        """Yield the non-blank rows after the header at ``position`` in ``head``."""
        for number, values in chain(self.head[position + 1 :], self._rest):
            if not _blank_row(values):
                yield number, values


def _csv_sheet(binary: IO[bytes], label: str) -> _Sheet:
    return _Sheet(bounded_rows(_csv_rows(binary), label or "CSV 文件"), label)


def _csv_rows(binary: IO[bytes]) -> Iterator[list[Any]]:
    with text_stream(binary) as text:
        sample = text.read(64 * 1024)
        text.seek(0)
        head = sample.splitlines()[:HEADER_SEARCH_ROWS]
        # Excel writes ";" or tabs in some locales; the most frequent of the three in the head wins.
        delimiter = max(",\t;", key=lambda d: sum(line.count(d) for line in head))
        # Documents and retro sections may be long Markdown: allow cells up to the request limit.
        csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
        lines = _RecordLines(text)
        reader = csv.reader(lines, delimiter=delimiter)
        held: tuple[list[Any], int, list[str]] | None = None  # the last record, not yet given
        try:
            for row in reader:
                if held is not None:
                    yield held[0]
                held = row, reader.line_num - len(lines.current) + 1, lines.take()
        except csv.Error as exc:
            raise FileReadError(f"CSV 格式有误：{exc}") from None
        if held is not None:
            _check_closed(held[2], held[1], delimiter)
            yield held[0]


class _RecordLines:
    """The lines of a text, keeping those of the record the csv reader is reading."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self.current: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for line in self._text:
            self.current.append(line)
            yield line

    def take(self) -> list[str]:
        """Return the lines read since the last call."""
        taken, self.current = self.current, []
        return taken


def _check_closed(lines: list[str], first_line: int, delimiter: str) -> None:
    """Refuse a last record whose quote never closes: it swallowed every line after it.

    The lenient reader (a stray quote inside a cell is common in exported files) reads an
    unclosed quote to the end of the file as one cell, so the rows after it vanish into it.
    Only the last record can end inside a quote; read strictly, it says so.
    """
    if len(lines) < 2:
        return
    try:
        list(csv.reader(lines, delimiter=delimiter, strict=True))
    except csv.Error:
        raise FileReadError(
            f"第 {first_line} 行的引号没有闭合：从这一行到文件末尾都被读成了一个单元格，"
            "请补上引号后再导入"
        ) from None


def _worksheet_sheet(worksheet: Any, label: str) -> _Sheet:
    what = label or "工作表"
    return _Sheet(bounded_rows(_worksheet_rows(worksheet, what), what), label)


def _worksheet_rows(worksheet: Any, what: str) -> Iterator[list[Any]]:
    """Yield each row's values; a row openpyxl cannot read ends the sheet with a read error.

    openpyxl parses the sheet's XML as it iterates and meets a malformed cell only there
    (``<v>abc</v>`` in a number cell, a bad reference, a boolean "maybe", a rich-text run
    without its attributes), raising whatever its descriptors raise: TypeError, ValueError,
    KeyError, IndexError… Any of them is the file's fault, not the app's: the rows before it
    stand, the job says where it stopped.
    """
    rows = worksheet.iter_rows()
    number = 0
    while True:
        try:
            values = [_cell_value(cell) for cell in next(rows)]
        except StopIteration:
            return
        except Exception as exc:  # see above: every error here is the file's
            raise FileReadError(
                f"无法读取{what}第 {number + 1} 行：单元格格式有误"
                f"（{type(exc).__name__}），该行及之后的行未读取"
            ) from None
        number += 1
        yield values


def _cell_value(cell: Any) -> Any:
    """Return a cell's value as the sheet shows it where that differs from what it stores.

    A cell formatted as a percentage stores 4.2 % as 0.042: read as it shows ("4.2%"), so a
    转化率（%） column gets 4.2, not 0.042, and an amount column names the percent it cannot take.
    """
    value = cell.value
    number_format = getattr(cell, "number_format", None) or ""
    if isinstance(value, int | float) and not isinstance(value, bool) and "%" in number_format:
        return f"{round(value * 100, 10)!r}%"
    return value


def _open_workbook(binary: IO[bytes]) -> Any:
    check_zip(binary, "Excel 文件")
    try:
        return openpyxl.load_workbook(binary, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError) as exc:
        raise FileReadError(f"无法读取 Excel 文件（仅支持 .xlsx）：{exc}") from None


def _duplicate_warning(columns: list[Column], label: str) -> list[str]:
    """Name the columns that hold the same field: each row reads the first of them with a value.

    "经验教训", "lessons" and "经验" side by side all fill 经验教训; the text of the later ones was
    dropped without a word whenever the first had some.
    """
    by_field: dict[str, list[str]] = {}
    for column in columns:
        if column.field and not column.derived:
            by_field.setdefault(column.field, []).append(column.header)
    return [
        f"{label + '的' if label else ''}列 {'、'.join(f'“{h}”' for h in headers)} "
        f"都对应“{field_label(field)}”："
        "每行只取第一个有内容的列，其余列的内容未导入"
        for field, headers in by_field.items()
        if len(headers) > 1
    ]


def _ignored_warning(columns: list[Column], label: str) -> list[str]:
    ignored = [c.header for c in columns if not c.known and c.header]
    if not ignored:
        return []
    return [f"{label}已忽略不认识的列：{'、'.join(ignored)}（见列名对照表）"]


def _read_metric_sheet(sheet: _Sheet, metrics: MetricRows) -> list[str]:
    """Read a metrics sheet (指标 | 单位 | 基线 | 目标 | 实际, keyed by campaign) into ``metrics``."""
    headers = [
        [match_name(cell_text(v), "metric_sheet") for v in values] for _, values in sheet.head
    ]
    position = next((i for i, names in enumerate(headers) if "name" in names), None)
    if position is None:
        return [f"{sheet.label}缺少“指标”列，已忽略"]
    names = headers[position]
    warnings = []
    for number, values in sheet.rows_after(position):
        row = {name: values[i] for i, name in enumerate(names) if name and i < len(values)}
        warnings += metrics.add(number, row)
    return warnings


def _read_metric_file(binary: IO[bytes], metrics: MetricRows) -> list[str]:
    """Read metrics from a second file: a CSV, or the first sheet of a workbook."""
    metrics.label = "指标文件"
    start = binary.tell()
    magic = binary.read(2)
    binary.seek(start)
    if magic != b"PK":
        return _read_metric_sheet(_csv_sheet(binary, "指标文件"), metrics)
    workbook = _open_workbook(binary)
    try:
        return _read_metric_sheet(_worksheet_sheet(workbook.worksheets[0], "指标文件"), metrics)
    finally:
        workbook.close()


def _campaign_rows(
    sheet: _Sheet, metrics: MetricRows, warnings: list[str], label: str
) -> Iterator[SourceRow]:
    position, columns = sheet.campaign_columns()
    warnings += _ignored_warning(columns, label) + _duplicate_warning(columns, label)
    unreadable_values = 0
    for number, values in sheet.rows_after(position):
        unreadable: list[str] = []
        data = record_from_cells(columns, values, unreadable)
        source = SourceRow(
            row=number, data=data, warnings=[f"{label}第 {number} 行 {w}" for w in unreadable]
        )
        # Each value left empty is said in the file's warnings too (the report keeps them),
        # up to a bound, then counted: a file of a million bad cells stays a bounded report.
        for warning in source.warnings:
            unreadable_values += 1
            if unreadable_values <= MAX_VALUE_WARNINGS:
                warnings.append(warning)
        metrics.attach(source)
        yield source
    if unreadable_values > MAX_VALUE_WARNINGS:
        warnings.append(
            f"{label}另有 {unreadable_values - MAX_VALUE_WARNINGS} 个值无法识别为数字，已留空"
        )
    unused = sorted(metrics.unused())
    if unused:
        shown = "、".join(str(n) for n in unused[:20]) + ("…" if len(unused) > 20 else "")
        warnings.append(f"{metrics.label}第 {shown} 行对应不到任何活动，已忽略")


class CsvReader:
    """Campaign rows of a CSV file, with metrics from an optional second file."""

    def __init__(self, binary: IO[bytes], metrics: IO[bytes] | None = None) -> None:
        self.binary = binary
        self.metrics_binary = metrics
        self.warnings: list[str] = []
        self._start = binary.tell()
        self._size = binary.seek(0, 2) - self._start
        binary.seek(self._start)

    def position(self) -> tuple[int, int]:
        """Return (bytes read, file size)."""
        return min(self.binary.tell() - self._start, self._size), self._size

    def rows(self) -> Iterator[SourceRow]:
        metrics = MetricRows()
        if self.metrics_binary is not None:
            self.warnings += _read_metric_file(self.metrics_binary, metrics)
        yield from _campaign_rows(_csv_sheet(self.binary, ""), metrics, self.warnings, "")


class XlsxReader:
    """Campaign rows of a workbook's first sheet, with metrics from its 指标 / metrics sheet."""

    def __init__(self, binary: IO[bytes], metrics: IO[bytes] | None = None) -> None:
        self.binary = binary
        self.metrics_binary = metrics
        self.warnings: list[str] = []
        self._done = 0
        self._total = 0

    def position(self) -> tuple[int, int]:
        """Return (rows read, rows in the campaign sheet)."""
        return self._done, self._total

    def rows(self) -> Iterator[SourceRow]:
        workbook = _open_workbook(self.binary)
        try:
            metric_names = {fold(name) for name in METRIC_SHEET_NAMES}
            sheets = workbook.worksheets
            metric_sheets = [ws for ws in sheets if fold(ws.title) in metric_names]
            main = next((ws for ws in sheets if ws not in metric_sheets), None)
            if main is None:
                raise FileReadError("工作簿中没有活动表：第一个工作表应每行一个活动")
            metrics = MetricRows()
            for worksheet in metric_sheets:
                metrics.label = f"“{worksheet.title}”表"
                self.warnings += _read_metric_sheet(
                    _worksheet_sheet(worksheet, metrics.label), metrics
                )
            if self.metrics_binary is not None:
                self.warnings += _read_metric_file(self.metrics_binary, metrics)
            self._total = main.max_row or 0
            label = f"“{main.title}”表"
            sheet = _worksheet_sheet(main, label)
            for source in _campaign_rows(sheet, metrics, self.warnings, label):
                self._done = source.row
                yield source
            self._done = self._total
        finally:
            workbook.close()
