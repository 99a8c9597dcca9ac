"""Write campaigns out as files, from plain dicts: CSV, Excel and JSON Lines for lists, Markdown
for one campaign. The database side (which campaigns, in what shape) is kb/transfer/exports.py.

Every export reads back into the same campaigns (tests/transfer/test_round_trip.py): CSV and Excel
cells that a spreadsheet would run as formulas are neutralized with a leading ``'`` that the
importer strips again; nested fields use their friendly text only when it reads back exactly;
Excel keeps numbers and dates as numbers and dates, with metrics on a second sheet.
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
from openpyxl.styles import Font

from ingest import cells
from ingest.columns import METRIC_SHEET_COLUMNS, export_header
from kb.vocab import GOAL_TYPES, STATUSES

# A campaign as the schema takes it (``campaign_to_input``): what CSV, Excel and Markdown write.
Record = Mapping[str, Any]

EXPORT_FIELDS = (
    "external_id", "title", "industry", "department", "business_line", "goal_type", "goal",
    "audience", "products", "rewards", "channels", "start_date", "end_date", "status",
    "budget_cny", "metrics", "summary", "went_well", "problems", "lessons", "recommendations",
    "hypotheses", "documents", "tags",
)  # fmt: skip
# Excel puts metrics on their own sheet, one row per metric, numbers as numbers.
XLSX_FIELDS = tuple(f for f in EXPORT_FIELDS if f != "metrics")
METRIC_SHEET = "指标"
METRIC_SHEET_FIELDS = (
    "campaign_row", "external_id", "title", "name", "unit", "baseline", "target", "actual",
)  # fmt: skip
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
    row: dict[str, Any] = {}
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

    out.writerow([export_header(name) for name in EXPORT_FIELDS])
    yield "\ufeff" + flush()
    for record in records:
        row = campaign_cells(record)
        out.writerow([_csv_text(row[name]) for name in EXPORT_FIELDS])
        yield flush()


def jsonl_chunks(items: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Yield a JSON Lines export: one campaign a line (the caller gives the API's shape)."""
    for item in items:
        yield json.dumps(item, ensure_ascii=False) + "\n"


def _xlsx_cell(sheet: Any, value: Any, header: bool = False) -> Any:
    if isinstance(value, str):
        # XML cannot hold most control characters: they are dropped from the workbook.
        value = ILLEGAL_CHARACTERS_RE.sub("", cells.neutralize(value))
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, date):
        cell.number_format = "yyyy-mm-dd"
    if header:
        cell.font = Font(bold=True)
    return cell


def write_xlsx(records: Iterable[Record], target: IO[bytes]) -> None:
    """Write an Excel export: a 活动 sheet, one row per campaign, and a 指标 sheet."""
    workbook = Workbook(write_only=True)
    main = workbook.create_sheet("活动")
    metrics = workbook.create_sheet(METRIC_SHEET)
    main.append([_xlsx_cell(main, export_header(n), header=True) for n in XLSX_FIELDS])
    metrics.append(
        [_xlsx_cell(metrics, METRIC_SHEET_COLUMNS[n][0], header=True) for n in METRIC_SHEET_FIELDS]
    )
    main.freeze_panes = "C2"
    for row_number, data in enumerate(records, start=2):
        row = campaign_cells(data)
        main.append([_xlsx_cell(main, row[name]) for name in XLSX_FIELDS])
        for metric in data["metrics"]:
            values = {
                "campaign_row": row_number,
                "external_id": data["external_id"],
                "title": data["title"],
                **metric,
            }
            metrics.append([_xlsx_cell(metrics, values[n]) for n in METRIC_SHEET_FIELDS])
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
        front[name] = date.fromisoformat(value) if name.endswith("_date") else value
    meta = yaml.dump(
        front, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100_000
    ).rstrip("\n")
    parts = [f"---\n{meta}\n---", f"# {data['title']}"]
    for name, label in SECTIONS:
        if data[name]:
            parts.append(f"## {label} {{#{name}}}\n\n{data[name]}")
    for document in data["documents"]:
        heading = f"## {document['title']} {{#document kind={document['kind']}}}"
        parts.append(f"{heading}\n\n{document['body']}".rstrip())
    return "\n\n".join(parts) + "\n"
