"""Write campaigns out as files, from plain dicts: CSV, Excel and JSON Lines for lists, Markdown
for one campaign. The database side (which campaigns, in what shape) is kb/transfer/exports.py.

Every export reads back into the same campaigns (tests/transfer/test_round_trip.py). CSV cells
that a spreadsheet would run as formulas are neutralized with a leading ``'`` that the importer
strips again; Excel stores every text as a string cell, which is never a formula, so a retro
starting with "- " shows as written, without a quote. Nested fields use their friendly text
(documents under "【文档】title（kind）" lines, the key metric marked 【主要指标】) only when it
reads back exactly. Excel keeps numbers and dates as numbers and dates (年月日), with metrics on a
second sheet; its sheets have column widths, a frozen header and a filter. Each campaign's key
metric (主要指标) is written with its attainment and verdict: derived columns an import skips.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import IO, Any, Literal, get_args

import yaml
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from ingest import cells
from ingest.columns import DERIVED_COLUMNS, METRIC_SHEET_COLUMNS, export_header
from kb.vocab import GOAL_TYPES, HYPOTHESIS_RESULTS, ROW_FIELD_LABELS, STATUSES

# A campaign as the schema takes it (``campaign_to_input``): what CSV, Excel and Markdown write.
# It may carry ``key_metric``: {"name", "attainment_pct", "verdict"} of its key metric (derived,
# written for a reader, never read back).
Record = Mapping[str, Any]

EXPORT_FIELDS = (
    "external_id", "title", "industry", "department", "business_line", "goal_type", "goal",
    "audience", "products", "rewards", "channels", "start_date", "end_date", "status",
    "budget_cny", "metrics", "summary", "went_well", "problems", "lessons", "recommendations",
    "hypotheses", "documents", "tags",
)  # fmt: skip
KEY_FIELDS = tuple(DERIVED_COLUMNS)
# Excel puts metrics on their own sheet, one row per metric, numbers as numbers.
XLSX_FIELDS = tuple(f for f in EXPORT_FIELDS if f != "metrics")
METRIC_SHEET = "指标"
METRIC_SHEET_FIELDS = (
    "campaign_row", "external_id", "title", "name", "unit", "baseline", "target", "actual", "key",
)  # fmt: skip
# Column widths in characters (a CJK character counts about two); others get DEFAULT_WIDTH.
COLUMN_WIDTHS = {
    "external_id": 14, "title": 36, "industry": 10, "department": 14, "business_line": 12,
    "goal_type": 10, "goal": 30, "audience": 20, "products": 20, "rewards": 32, "channels": 20,
    "start_date": 14, "end_date": 14, "status": 8, "budget_cny": 14, "metrics": 44,
    "key_metric": 14, "key_attainment": 10, "key_verdict": 12, "summary": 50, "went_well": 50,
    "problems": 50, "lessons": 50, "recommendations": 50, "hypotheses": 40, "documents": 50,
    "tags": 20, "campaign_row": 8, "name": 16, "unit": 8, "baseline": 12, "target": 12,
    "actual": 12, "key": 10,
}  # fmt: skip
DEFAULT_WIDTH = 14
DATE_FORMAT = 'yyyy"年"m"月"d"日"'
NUMBER_FORMATS = {"budget_cny": "#,##0", "key_attainment": '0.0"%"'}
ExportFormat = Literal["csv", "xlsx", "jsonl"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


# ---- one row per campaign --------------------------------------------------------------------


def campaign_cells(data: Record) -> dict[str, Any]:
    """Return a campaign's cell values by field: text, a float, a date, or None."""
    key = data.get("key_metric") or {}
    row: dict[str, Any] = {
        "key_metric": key.get("name"),
        "key_attainment": key.get("attainment_pct"),
        "key_verdict": key.get("verdict"),
    }
    for name in EXPORT_FIELDS:
        value = data[name]
        if name in cells.NESTED:
            row[name] = cells.encode(name, value)
        elif name == "goal_type":
            row[name] = GOAL_TYPES.get(value, value)
        elif name == "status":
            row[name] = STATUSES.get(value, value)
        elif name in ("start_date", "end_date"):
            row[name] = date.fromisoformat(value)
        else:
            row[name] = value
    return row


# The key metric's columns follow the metrics (CSV) or the budget (Excel, metrics on a sheet).
CSV_FIELDS = (*EXPORT_FIELDS[: EXPORT_FIELDS.index("metrics") + 1], *KEY_FIELDS,
              *EXPORT_FIELDS[EXPORT_FIELDS.index("metrics") + 1 :])  # fmt: skip
XLSX_MAIN_FIELDS = (*XLSX_FIELDS[: XLSX_FIELDS.index("budget_cny") + 1], *KEY_FIELDS,
                    *XLSX_FIELDS[XLSX_FIELDS.index("budget_cny") + 1 :])  # fmt: skip


def header(name: str) -> str:
    """Return the column header of a field, a derived column, or a metric-sheet column."""
    return DERIVED_COLUMNS.get(name) or export_header(name)


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return cells.format_number(value)
    if isinstance(value, date):
        return value.isoformat()
    return cells.neutralize(str(value))


def csv_chunks(records: Iterable[Record]) -> Iterator[str]:
    """Yield a CSV export: a BOM (so Excel reads it as UTF-8), the header, one row per campaign."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    out.writerow([header(name) for name in CSV_FIELDS])
    yield "\ufeff" + flush()
    for record in records:
        row = campaign_cells(record)
        if row["key_attainment"] is not None:
            row["key_attainment"] = _percent(row["key_attainment"])
        out.writerow([_csv_text(row[name]) for name in CSV_FIELDS])
        yield flush()


def jsonl_chunks(items: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Yield a JSON Lines export: one campaign a line (the caller gives the API's shape)."""
    for item in items:
        yield json.dumps(item, ensure_ascii=False) + "\n"


_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="E5E7EB")
_HEADER_ALIGNMENT = Alignment(vertical="center", wrap_text=True)


def _xlsx_text(text: str) -> str:
    """Return text for a string cell: as written, "- 要点" and "=SUM" included (a string cell is
    never a formula, so no quote is shown); only a leading ``'`` before such a character gets
    one more, which the importer strips, so the round trip stays exact."""
    if text.startswith("'") and text[1:2] and cells.unneutralize(text) != text:
        text = "'" + text
    # XML cannot hold most control characters: they are dropped from the workbook.
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def _xlsx_cell(sheet: Any, value: Any, field: str = "", header: bool = False) -> Any:
    if isinstance(value, bool):
        value = "是" if value else ""
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=_xlsx_text(value))
        cell.data_type = "s"  # openpyxl takes text starting with "=" for a formula otherwise
    else:
        cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, date):
        cell.number_format = DATE_FORMAT
    elif field in NUMBER_FORMATS and isinstance(value, float):
        cell.number_format = NUMBER_FORMATS[field]
    if header:
        cell.font, cell.fill, cell.alignment = _HEADER_FONT, _HEADER_FILL, _HEADER_ALIGNMENT
    return cell


def _start_sheet(sheet: Any, fields: tuple[str, ...], headers: list[str], freeze: str) -> None:
    """Set widths and the frozen panes (before any row, as write-only sheets need), then the header."""
    for column, name in enumerate(fields, start=1):
        width = COLUMN_WIDTHS.get(name, DEFAULT_WIDTH)
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = freeze
    sheet.append([_xlsx_cell(sheet, text, header=True) for text in headers])


def _filter(sheet: Any, fields: tuple[str, ...], rows: int) -> None:
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(fields))}{max(rows, 1)}"


def write_xlsx(records: Iterable[Record], target: IO[bytes]) -> None:
    """Write an Excel export: a 活动 sheet, one row per campaign, and a 指标 sheet.

    Both have column widths, a frozen header row (and title column) and a filter; the 活动 sheet
    has the key metric's name, attainment (a number shown with %) and verdict.
    """
    workbook = Workbook(write_only=True)
    main = workbook.create_sheet("活动")
    metrics = workbook.create_sheet(METRIC_SHEET)
    _start_sheet(main, XLSX_MAIN_FIELDS, [header(n) for n in XLSX_MAIN_FIELDS], "C2")
    _start_sheet(
        metrics,
        METRIC_SHEET_FIELDS,
        [METRIC_SHEET_COLUMNS[n][0] for n in METRIC_SHEET_FIELDS],
        "D2",
    )
    row_number, metric_rows = 1, 1
    for row_number, data in enumerate(records, start=2):  # the last is used below
        row = campaign_cells(data)
        main.append([_xlsx_cell(main, row[name], name) for name in XLSX_MAIN_FIELDS])
        for metric in data["metrics"]:
            values = {
                "campaign_row": row_number,
                "external_id": data["external_id"],
                "title": data["title"],
                **metric,
            }
            metrics.append([_xlsx_cell(metrics, values.get(n), n) for n in METRIC_SHEET_FIELDS])
            metric_rows += 1
    _filter(main, XLSX_MAIN_FIELDS, row_number)
    _filter(metrics, METRIC_SHEET_FIELDS, metric_rows)
    workbook.save(target)


# ---- one campaign as Markdown ----------------------------------------------------------------

SECTIONS = (
    ("summary", "背景与概述"),
    ("went_well", "做得好的"),
    ("problems", "问题与原因"),
    ("lessons", "经验教训"),
    ("recommendations", "下次建议"),
)
FRONT_MATTER_FIELDS = (
    "title", "external_id", "industry", "department", "business_line", "goal_type", "status",
    "start_date", "end_date", "budget_cny", "goal", "audience", "products", "channels", "tags",
    "rewards", "metrics", "hypotheses",
)  # fmt: skip


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line text as ``|`` blocks, readable in any editor."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)


def _percent(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _labelled(item: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    return {labels.get(key, key): value for key, value in item.items()}


def campaign_markdown(data: Record) -> str:
    """Return a campaign as Markdown: fields in front matter, retro and documents as sections.

    Section headings carry marks (``{#went_well}``) so that headings inside the text itself do
    not split it when the file is imported again.
    """
    front: dict[str, Any] = {}
    for name in FRONT_MATTER_FIELDS:
        value = data[name]
        if value is None or value == "" or value == []:
            continue
        if name.endswith("_date"):
            value = date.fromisoformat(value)
        elif name == "goal_type":
            value = GOAL_TYPES.get(value, value)  # read back through the same labels
        elif name == "status":
            value = STATUSES.get(value, value)
        elif name == "metrics":
            # Only the chosen key metric says so: "key: false" on every other one is noise.
            value = [{k: v for k, v in m.items() if k != "key" or v is not False} for m in value]
        elif name == "hypotheses":
            value = [
                {**h, "result": HYPOTHESIS_RESULTS.get(h["result"], h["result"])} for h in value
            ]
        if name in ROW_FIELD_LABELS:
            value = [_labelled(item, ROW_FIELD_LABELS[name]) for item in value]
        # Keys by the fields' Chinese names, as the spreadsheets' headers (the reader knows both).
        front[export_header(name)] = value
    meta = yaml.dump(
        front, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100_000
    ).rstrip("\n")
    key = data.get("key_metric")
    if key:
        # A YAML comment: shown to a reader, ignored when the file is imported again.
        attainment = key.get("attainment_pct")
        shown = f"达成率 {_percent(attainment)} · " if attainment is not None else ""
        meta += f"\n# 主要指标：{key['name']} · {shown}{key.get('verdict') or ''}".rstrip(" ·")
    parts = [f"---\n{meta}\n---", f"# {data['title']}"]
    for name, label in SECTIONS:
        if data[name]:
            parts.append(f"## {label} {{#{name}}}\n\n{data[name]}")
    for document in data["documents"]:
        heading = f"## {document['title']} {{#document kind={document['kind']}}}"
        parts.append(f"{heading}\n\n{document['body']}".rstrip())
    return "\n\n".join(parts) + "\n"
