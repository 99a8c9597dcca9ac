"""What the import API takes (an upload or a JSON list) and answers (the job, its report)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from ingest.readers import FORMATS, Format
from ingest.writers import ExportFormat
from kb.campaigns.schemas import CampaignIn
from kb.campaigns.serialize import Out
from kb.models import ImportJob
from kb.transfer.imports import OUTCOMES, ImportReport, RowReport
from kb.transfer.jobs import fraction

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


class ImportJobPath(BaseModel):
    """The id of an import job."""

    job_id: int = Field(ge=1)


class ImportProgressOut(Out):
    """How far a job has got: rows committed so far, and the share of the file read."""

    rows_read: int = Field(description="已处理（已提交）的行数")
    rows_written: int = Field(description="其中新建、更新或未变的行数（预览时为将写入的行数）")
    rows_rejected: int = Field(description="其中被拒绝的行数")
    fraction: float = Field(description="已读取文件的比例，0 到 1")


class ImportJobOut(Out):
    """An import job: its state and progress; once it has ended, its report.

    ``state``: queued (排队中) → running (导入中) → done (已完成) or failed (失败). Rows are
    committed in batches with their report, so the report of a failed job lists exactly the
    rows that were written.
    """

    id: int
    state: Literal["queued", "running", "done", "failed"]
    format: str | None = Field(description="文件格式；尚未识别时为空")
    filename: str
    dry_run: bool
    progress: ImportProgressOut
    error: str | None = Field(description="失败原因，或文件中途无法继续读取的说明")
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None = Field(description="运行中的任务最近一次报告进度的时间")
    report: ImportReportOut | None = Field(
        description="逐行结果（任务结束后给出：done 或 failed；failed 时为已写入的行）"
    )
    index_seq: int | None = Field(
        default=None,
        description="已写入的活动在变更序列中的最新序号（预览不写入时为空）："
        "GET /api/v1/index/status 的 keyword_seq、vector_seq 达到它时即可搜索到",
    )
    indexed: bool | None = Field(
        default=None, description="本主机的关键词与语义索引是否已包含已写入的活动"
    )


def job_out(job: ImportJob, report: ImportReport | None) -> ImportJobOut:
    """Return the API shape of a job (with its report once it has ended)."""
    return ImportJobOut(
        id=job.id,
        state=job.state,
        format=job.format,
        filename=job.filename,
        dry_run=bool(job.options.get("dry_run")),
        progress=ImportProgressOut(
            rows_read=job.rows_read,
            rows_written=job.rows_written,
            rows_rejected=job.rows_rejected,
            fraction=round(fraction(job), 4),
        ),
        error=job.error,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        report=report_out(report) if report is not None else None,
    )
