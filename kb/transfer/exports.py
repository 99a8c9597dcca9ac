"""Write campaigns out: CSV, Excel and JSON Lines for lists, Markdown for one campaign.

Every export reads back into the same campaigns (tests/ingest/test_round_trip.py): CSV and Excel
cells that a spreadsheet would run as formulas are neutralized with a leading ``'`` that the
importer strips again; nested fields use their friendly text only when it reads back exactly;
Excel keeps numbers and dates as numbers and dates, with metrics on a second sheet.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import date
from typing import IO, Any

import sqlalchemy as sa
import yaml
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from sqlalchemy.orm import selectinload

from ingest import cells
from ingest.columns import METRIC_SHEET_COLUMNS, export_header
from kb.campaigns.queries import CampaignFilter, list_campaigns
from kb.campaigns.serialize import campaign_to_dict, campaign_to_input
from kb.extensions import db
from kb.models import Campaign
from kb.searching.schemas import SearchQuery
from kb.vocab import GOAL_TYPES, STATUSES

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
EXPORT_FORMATS = ("csv", "xlsx", "jsonl")
MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
BATCH = 200
SEARCH_PAGE = 100
SEARCH_MAX_OFFSET = 10_000


# ---- which campaigns -------------------------------------------------------------------------


def iter_campaigns(filters: CampaignFilter) -> Iterator[Campaign]:
    """Yield every campaign of a filtered list, a batch at a time with its child rows loaded."""
    page = 1
    while True:
        result = list_campaigns(filters, page=page, per_page=BATCH)
        _load_children([c.id for c in result.items])
        yield from result.items
        if page >= result.pages:
            return
        db.session.expunge_all()  # bounded memory over a long export
        page += 1


def iter_search(query: SearchQuery) -> Iterator[Campaign]:
    """Yield the campaigns of a search result in rank order, every page of it."""
    from kb.searching.service import search  # the search stack loads only when a search is exported

    offset = 0
    while offset <= SEARCH_MAX_OFFSET:
        response = search(query.model_copy(update={"limit": SEARCH_PAGE, "offset": offset}))
        campaigns = [result.campaign for result in response.results]
        _load_children([c.id for c in campaigns])
        yield from campaigns
        offset += SEARCH_PAGE
        if not response.results or offset >= response.total:
            return


def _load_children(ids: list[int]) -> None:
    if ids:
        db.session.scalars(
            sa.select(Campaign)
            .where(Campaign.id.in_(ids))
            .options(
                selectinload(Campaign.rewards),
                selectinload(Campaign.metrics),
                selectinload(Campaign.hypotheses),
                selectinload(Campaign.documents),
            )
        ).all()


# ---- one row per campaign --------------------------------------------------------------------


def campaign_cells(data: dict[str, Any]) -> dict[str, Any]:
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


def csv_chunks(campaigns: Iterable[Campaign]) -> Iterator[str]:
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
    for campaign in campaigns:
        row = campaign_cells(campaign_to_input(campaign))
        out.writerow([_csv_text(row[name]) for name in EXPORT_FIELDS])
        yield flush()


def jsonl_chunks(campaigns: Iterable[Campaign]) -> Iterator[str]:
    """Yield a JSON Lines export: one campaign a line, in the API's shape."""
    for campaign in campaigns:
        yield json.dumps(campaign_to_dict(campaign), ensure_ascii=False) + "\n"


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


def write_xlsx(campaigns: Iterable[Campaign], target: IO[bytes]) -> None:
    """Write an Excel export: a 活动 sheet, one row per campaign, and a 指标 sheet."""
    workbook = Workbook(write_only=True)
    main = workbook.create_sheet("活动")
    metrics = workbook.create_sheet(METRIC_SHEET)
    main.append([_xlsx_cell(main, export_header(n), header=True) for n in XLSX_FIELDS])
    metrics.append(
        [_xlsx_cell(metrics, METRIC_SHEET_COLUMNS[n][0], header=True) for n in METRIC_SHEET_FIELDS]
    )
    main.freeze_panes = "C2"
    for row_number, campaign in enumerate(campaigns, start=2):
        data = campaign_to_input(campaign)
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


def campaign_markdown(campaign: Campaign) -> str:
    """Return a campaign as Markdown: fields in front matter, retro and documents as sections.

    Section headings carry marks (``{#went_well}``) so that headings inside the text itself do
    not split it when the file is imported again.
    """
    data = campaign_to_input(campaign)
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
