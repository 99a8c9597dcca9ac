"""What the import API takes (an upload or a JSON list) and answers (the report, row by row)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema

from ingest.readers import FORMATS, Format
from ingest.writers import ExportFormat
from kb.campaigns.schemas import CampaignIn
from kb.campaigns.serialize import Out
from kb.transfer.imports import OUTCOMES, ImportReport, RowReport

_FILE = {"type": "string", "format": "binary"}


class ImportQuery(BaseModel):
    """Import options given in the query string (a form field of the same name wins)."""

    dry_run: bool | None = None
    format: Format | None = None


class ImportUploadIn(BaseModel):
    """A file to import, sent as multipart/form-data."""

    file: Annotated[bytes, WithJsonSchema(_FILE)]
    metrics: Annotated[
        bytes | None, WithJsonSchema({**_FILE, "description": "可选：CSV/Excel 的单独指标表"})
    ] = None
    format: Annotated[Format | None, WithJsonSchema({"type": "string", "enum": list(FORMATS)})] = (
        None
    )
    dry_run: Annotated[bool | None, WithJsonSchema({"type": "boolean"})] = None


class ImportListIn(BaseModel):
    """Campaigns to import as JSON, with the dry-run switch."""

    campaigns: list[CampaignIn]
    dry_run: bool = False


# A JSON import: the list itself, or an object holding it.
ImportJsonIn = list[CampaignIn] | ImportListIn


class ExportPath(BaseModel):
    """The format of an export, named by the path's extension."""

    fmt: ExportFormat


class ImportRowOut(Out):
    """One row of an import: where it was, and the campaign it became or why it was refused."""

    row: int = Field(
        description="行号：表格中的行（表头为第 1 行）、JSON Lines 的行、JSON 数组中的第几项"
    )
    line: int | None = Field(default=None, description="JSON 中该项开始的行")
    title: str
    external_id: str | None
    id: int | None = Field(default=None, description="写入（或将写入）的活动 id")
    fields: dict[str, str] | None = Field(
        default=None, description="拒绝原因：字段路径（如 metrics.0.target）→ 中文说明"
    )


class ImportCountsOut(Out):
    """How many rows had each outcome."""

    created: int
    updated: int
    unchanged: int
    rejected: int


class ImportReportOut(Out):
    """What an import did (or would do, dry run): counts, then the rows of each outcome.

    Absent members were not given: ``line`` only for JSON input, ``fields`` only on rejected
    rows, ``id`` only on the others, ``error`` only when the file broke off.
    """

    format: Format
    dry_run: bool
    counts: ImportCountsOut
    created: list[ImportRowOut]
    updated: list[ImportRowOut]
    unchanged: list[ImportRowOut]
    rejected: list[ImportRowOut]
    warnings: list[str]
    error: str | None = Field(default=None, description="文件中途无法继续读取时的说明")


def row_out(row: RowReport) -> ImportRowOut:
    """Return one row's outcome; answered with ``exclude_unset``, so only what applies shows."""
    given: dict[str, Any] = {"row": row.row, "title": row.title, "external_id": row.external_id}
    if row.line is not None:
        given["line"] = row.line
    if row.outcome == "rejected":
        given["fields"] = row.fields
    else:
        given["id"] = row.campaign_id
    return ImportRowOut(**given)


def report_out(report: ImportReport) -> ImportReportOut:
    """Return the API shape of an import report (to be answered with ``exclude_unset``)."""
    rows = {
        outcome: [row_out(r) for r in report.rows if r.outcome == outcome] for outcome in OUTCOMES
    }
    extra: dict[str, Any] = {"error": report.error} if report.error else {}
    return ImportReportOut(
        format=report.format,
        dry_run=report.dry_run,
        counts=ImportCountsOut(**report.counts),
        created=rows["created"],
        updated=rows["updated"],
        unchanged=rows["unchanged"],
        rejected=rows["rejected"],
        warnings=report.warnings,
        **extra,
    )
