"""Run an import: validate every row with the campaign schema, then write it (or only plan it).

One bad row never sinks the file: it is reported with its row number and one Chinese message per
field, and the next row goes on. A dry run (the preview) reads the database to say what would be
created, updated or left unchanged, and writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from ingest.errors import FileReadError
from ingest.readers import Format, Reader, detect_format, open_reader
from ingest.records import SourceRow
from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.extensions import db
from kb.transfer import saving as writer
from kb.validation import InvalidInputError

RowOutcome = Literal["created", "updated", "unchanged", "rejected"]
OUTCOMES: tuple[RowOutcome, ...] = ("created", "updated", "unchanged", "rejected")
OUTCOME_LABELS = {"created": "新建", "updated": "更新", "unchanged": "未变", "rejected": "拒绝"}
# Called after each row with (done, total) in the reader's units (bytes or rows).
Progress = Callable[[int, int], None]
# Identity-map objects are let go this often, so a long import holds no campaigns in memory.
RELEASE_EVERY = 200


@dataclass(slots=True)
class RowReport:
    """What happened to one row."""

    row: int
    outcome: RowOutcome
    title: str = ""
    external_id: str | None = None
    campaign_id: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    line: int | None = None


@dataclass(slots=True)
class ImportReport:
    """The outcome of an import, row by row, with file-level warnings."""

    format: str
    dry_run: bool
    rows: list[RowReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Set when the file broke off after some rows were read (a JSON array cut short).
    error: str | None = None
    elapsed_s: float = 0.0
    # Schema input of the rejected rows, kept on request (the page offers them in the form).
    drafts: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for row in self.rows:
            counts[row.outcome] += 1
        return counts

    @property
    def rejected(self) -> list[RowReport]:
        return [row for row in self.rows if row.outcome == "rejected"]

    @property
    def rate(self) -> float:
        """Rows per second."""
        return len(self.rows) / self.elapsed_s if self.elapsed_s > 0 else 0.0


def run_import(
    reader: Reader,
    *,
    fmt: str,
    dry_run: bool,
    progress: Progress | None = None,
    keep_drafts: bool = False,
) -> ImportReport:
    """Import every row the reader yields; raise FileReadError if the file is unreadable at once."""
    report = ImportReport(format=fmt, dry_run=dry_run)
    planner = writer.Planner() if dry_run else None
    started = time.perf_counter()
    try:
        for count, source in enumerate(reader.rows(), start=1):
            row = process_row(source, planner)
            report.rows.append(row)
            if keep_drafts and row.outcome == "rejected" and source.data is not None:
                report.drafts[source.row] = source.data
            if progress is not None:
                progress(*reader.position())
            if count % RELEASE_EVERY == 0:
                db.session.commit()
                db.session.expunge_all()
    except FileReadError as exc:
        if not report.rows:
            raise
        report.error = exc.message
    finally:
        report.elapsed_s = time.perf_counter() - started
        report.warnings += reader.warnings
    return report


def process_row(source: SourceRow, planner: writer.Planner | None) -> RowReport:
    """Validate one source row and write it (or, with a planner, only plan it)."""
    data = source.data or {}
    title = data.get("title")
    external_id = data.get("external_id")
    row = RowReport(
        row=source.row,
        outcome="rejected",
        title=title if isinstance(title, str) else "",
        external_id=external_id if isinstance(external_id, str) else None,
        line=source.line,
    )
    if source.errors or source.data is None:
        row.fields = source.errors or {"": "无法读取该行"}
        return row
    try:
        validated = validate_campaign(source.data)
        if planner is not None:
            row.campaign_id, row.outcome = planner.plan(validated)
        else:
            campaign, row.outcome = writer.save(validated)
            row.campaign_id = campaign.id
    except InvalidInputError as exc:
        row.fields = _annotated(exc.fields, source.notes)
    except services.VersionConflictError:
        row.fields = {"": "该活动正在被他人修改，请稍后重新导入这一行"}
    return row


def _annotated(fields: dict[str, str], notes: dict[str, str]) -> dict[str, str]:
    """Add where a field came from to its message: "请输入数字（指标表第 7 行）"."""
    if not notes:
        return fields
    annotated = {}
    for path, message in fields.items():
        note = next(
            (n for prefix, n in notes.items() if path == prefix or path.startswith(prefix + ".")),
            None,
        )
        annotated[path] = f"{message}（{note}）" if note else message
    return annotated


def import_stream(
    binary: IO[bytes],
    *,
    filename: str = "",
    fmt: Format | None = None,
    metrics: IO[bytes] | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    keep_drafts: bool = False,
) -> ImportReport:
    """Detect the format (unless given), open its reader and run the import."""
    fmt = fmt or detect_format(filename, binary)
    reader = open_reader(fmt, binary, metrics=metrics, filename=filename)
    return run_import(reader, fmt=fmt, dry_run=dry_run, progress=progress, keep_drafts=keep_drafts)
