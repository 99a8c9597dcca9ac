"""Imports as background jobs: stored in the database, claimed through it, written in batches.

An upload becomes an ``ImportJob`` row holding the file's bytes and options (not a host's disk:
any worker on any host may run it). A worker claims a job with a conditional UPDATE (after
``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes it), then
writes its rows in batches: each batch commits its campaigns, its report rows and the job's
progress in one transaction, after checking that the claim is still its own. So the report
always says exactly which rows were written; a run that dies is resumed by the next claim after
the last committed batch (its heartbeat goes stale), or failed after ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import sqlalchemy as sa
from flask import Flask, current_app, g

from ingest.errors import FileReadError
from ingest.jsonfile import ListReader
from ingest.readers import Reader, detect_format, format_named, open_reader
from ingest.records import SourceRow
from kb import audit, outbox
from kb.background import BackgroundLoop, start_once
from kb.database import batch_transaction, write_transaction
from kb.extensions import db
from kb.models import ImportJob, ImportJobRow, utcnow
from kb.transfer import saving
from kb.transfer.imports import OUTCOMES, ImportReport, RowOutcome, RowReport, process_row
from kb.validation import storable

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]
STATES: tuple[JobState, ...] = ("queued", "running", "done", "failed")
STATE_LABELS = {"queued": "排队中", "running": "导入中", "done": "已完成", "failed": "失败"}
# Rows per committed batch: small enough that a batch holds SQLite's write lock about a second.
BATCH_ROWS = 200
# A running job whose heartbeat is older than this was left by a dead worker: claim it again.
STALE_S = 120.0
# A job claimed this many times without finishing is failed rather than retried forever.
MAX_ATTEMPTS = 3
POLL_S = 5.0
# A preview can be confirmed this long after it ended; ended jobs are deleted after KEEP_DAYS.
PREVIEW_TTL_S = 3600
KEEP_DAYS = 30
_OUTCOMES: dict[str, RowOutcome] = {o: o for o in OUTCOMES}

# Called after each committed batch with (job id, rows read so far): tests stop a run here.
BatchHook = Callable[[int, int], None]
Progress = Callable[["ImportJob"], None]


class LostClaimError(Exception):
    """Another worker claimed the job (this run was taken for dead): stop without writing."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A job this worker holds: its id and the claim token its batches must still match."""

    job_id: int
    token: str


def enqueue(
    source: bytes,
    *,
    filename: str = "",
    fmt: str | None = None,
    metrics: bytes | None = None,
    metrics_filename: str | None = None,
    dry_run: bool = False,
    as_list: bool = False,
) -> ImportJob:
    """Store a new queued job (the file's bytes included) and return it."""
    purge_ended()
    with write_transaction() as session:
        job = ImportJob(
            state="queued",
            format=fmt,
            filename=filename[:255],
            source=source,
            metrics=metrics,
            metrics_filename=metrics_filename[:255] if metrics_filename else None,
            options={"dry_run": dry_run, "list": as_list},
            rows_read=0,
            rows_written=0,
            rows_rejected=0,
            progress_done=0,
            progress_total=len(source),
            warnings=[],
            attempts=0,
            created_by=audit.current_actor(),
        )
        session.add(job)
    return job


def probe(source: bytes, *, filename: str, fmt: str | None, metrics: bytes | None = None) -> str:
    """Return the file's format after reading its first row; raise FileReadError if unreadable.

    Cheap (one row), so a request refuses a file that cannot be read at all before queuing it.
    """
    binary = io.BytesIO(source)
    found = format_named(fmt) or detect_format(filename, binary)
    reader = open_reader(
        found, binary, metrics=io.BytesIO(metrics) if metrics is not None else None,
        filename=filename,
    )  # fmt: skip
    next(iter(reader.rows()), None)
    return found


def claim(job_id: int | None = None, *, stale_s: float = STALE_S) -> Claim | None:
    """Take the oldest claimable job (or ``job_id``): queued, or running with a stale heartbeat."""
    token = secrets.token_hex(16)
    now = utcnow()
    claimable = sa.or_(
        ImportJob.state == "queued",
        sa.and_(
            ImportJob.state == "running",
            ImportJob.heartbeat_at < now - timedelta(seconds=stale_s),
        ),
    )
    with write_transaction() as session:
        query = sa.select(ImportJob.id).where(claimable).order_by(ImportJob.id).limit(1)
        if job_id is not None:
            query = query.where(ImportJob.id == job_id)
        # PostgreSQL: a job another worker is claiming right now is skipped, not waited for.
        found = session.scalar(query.with_for_update(skip_locked=True))
        if found is None:
            return None
        # The same condition again: only one claimer's UPDATE can match (SQLite and PostgreSQL).
        taken = session.execute(
            sa.update(ImportJob)
            .where(ImportJob.id == found, claimable)
            .values(
                state="running",
                claim=token,
                heartbeat_at=now,
                attempts=ImportJob.attempts + 1,
                started_at=sa.func.coalesce(ImportJob.started_at, now),
            )
            .execution_options(synchronize_session=False)
        )
        if _rowcount(taken) != 1:
            return None
    return Claim(found, token)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))


def run(
    held: Claim,
    *,
    progress: Progress | None = None,
    after_batch: BatchHook | None = None,
) -> None:
    """Run a claimed job to its end (done or failed), resuming after its committed batches."""
    try:
        _run(held, progress, after_batch)
    except LostClaimError:
        log.warning("import job %s was claimed by another worker; this run stops", held.job_id)
    except Exception as exc:
        log.exception("import job %s failed", held.job_id)
        db.session.rollback()
        _finish(held, "failed", error=f"导入因内部错误中断（{type(exc).__name__}）")
    finally:
        db.session.expunge_all()


def _run(held: Claim, progress: Progress | None, after_batch: BatchHook | None) -> None:
    job = _load(held.job_id)
    if job.attempts > MAX_ATTEMPTS:
        _finish(held, "failed", error=f"导入已中断 {job.attempts - 1} 次，不再重试")
        return
    dry_run = bool(job.options.get("dry_run"))
    if dry_run and job.rows_read:
        # A preview keeps no state between runs (the planner's memory of earlier rows): redo it.
        _restart(held)
        job = _load(held.job_id)
    skip, warnings = job.rows_read, list(job.warnings or [])
    try:
        reader = job_reader(job)
        rows = iter(reader.rows())
        for _ in range(skip):
            next(rows, None)
    except FileReadError as exc:
        _finish(held, "failed", error=exc.message)
        return
    planner = saving.Planner() if dry_run else None
    error: str | None = None
    while error is None:
        batch, error, exhausted = _write_batch(held, rows, reader, planner)
        db.session.expunge_all()
        if not dry_run and batch:
            outbox.notify()
        if progress is not None:
            progress(_load(held.job_id))
        if after_batch is not None:
            after_batch(held.job_id, _load(held.job_id).rows_read)
        if exhausted:
            break
    warnings += [w for w in reader.warnings if w not in warnings]
    _finish(held, "done", error=error, warnings=warnings, dry_run=dry_run)


def _write_batch(
    held: Claim, rows: Iterator[SourceRow], reader: Reader, planner: saving.Planner | None
) -> tuple[list[RowReport], str | None, bool]:
    """Write up to BATCH_ROWS rows with their report and the job's progress, in one commit."""
    batch: list[RowReport] = []
    error: str | None = None
    exhausted = False
    with batch_transaction() as session:
        # First, so that on PostgreSQL the job row stays locked (and unclaimable) until commit.
        _own(held, heartbeat=True)
        while len(batch) < BATCH_ROWS:
            try:
                source = next(rows, None)
            except FileReadError as exc:
                error, exhausted = exc.message, True
                break
            if source is None:
                exhausted = True
                break
            batch.append(process_row(source, planner))
        rejected = sum(1 for r in batch if r.outcome == "rejected")
        session.add_all(
            ImportJobRow(
                job_id=held.job_id,
                row=r.row,
                line=r.line,
                outcome=r.outcome,
                title=storable(r.title),
                external_id=storable(r.external_id) if r.external_id else r.external_id,
                campaign_id=r.campaign_id,
                fields={storable(k): storable(v) for k, v in r.fields.items()},
            )
            for r in batch
        )
        done, total = reader.position()
        session.execute(
            sa.update(ImportJob)
            .where(ImportJob.id == held.job_id)
            .values(
                rows_read=ImportJob.rows_read + len(batch),
                rows_written=ImportJob.rows_written + len(batch) - rejected,
                rows_rejected=ImportJob.rows_rejected + rejected,
                progress_done=done,
                progress_total=total,
            )
            .execution_options(synchronize_session=False)
        )
    return batch, error, exhausted


def _own(held: Claim, *, heartbeat: bool) -> None:
    """Check (and lock) that the job is still ours; raise LostClaimError if not."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()} if heartbeat else {"claim": held.token}
    owned = db.session.execute(
        sa.update(ImportJob)
        .where(
            ImportJob.id == held.job_id,
            ImportJob.claim == held.token,
            ImportJob.state == "running",
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(owned) != 1:
        raise LostClaimError(held.job_id)


def _restart(held: Claim) -> None:
    with write_transaction() as session:
        _own(held, heartbeat=True)
        session.execute(sa.delete(ImportJobRow).where(ImportJobRow.job_id == held.job_id))
        session.execute(
            sa.update(ImportJob)
            .where(ImportJob.id == held.job_id)
            .values(rows_read=0, rows_written=0, rows_rejected=0, progress_done=0)
            .execution_options(synchronize_session=False)
        )


def _finish(
    held: Claim,
    state: JobState,
    *,
    error: str | None = None,
    warnings: list[str] | None = None,
    dry_run: bool = True,
) -> None:
    values: dict[str, Any] = {"state": state, "error": error, "finished_at": utcnow()}
    if warnings is not None:
        values["warnings"] = warnings
    if state == "done" and not dry_run:
        values["source"], values["metrics"] = b"", None  # imported: the file is not needed
    try:
        with write_transaction():
            _own(held, heartbeat=False)
            db.session.execute(
                sa.update(ImportJob)
                .where(ImportJob.id == held.job_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    except LostClaimError:
        log.warning(
            "import job %s was claimed by another worker; not marked %s", held.job_id, state
        )


def _load(job_id: int) -> ImportJob:
    job = db.session.get(ImportJob, job_id, populate_existing=True)
    if job is None:
        raise LookupError(job_id)
    return job


def job_reader(job: ImportJob) -> Reader:
    """Return a reader over the file (or list) stored with the job, as it was uploaded."""
    if job.options.get("list"):
        return ListReader(json.loads(job.source))
    binary = io.BytesIO(job.source)
    fmt = format_named(job.format) or detect_format(job.filename, binary)
    metrics = io.BytesIO(job.metrics) if job.metrics is not None else None
    return open_reader(fmt, binary, metrics=metrics, filename=job.filename)


# ---- previews and their confirmation ----------------------------------------------------------


def preview_job(text: str) -> ImportJob | None:
    """Return the finished preview with this id if it can still be confirmed (PREVIEW_TTL_S)."""
    if not text.isdigit() or len(text) > 12:
        return None
    job = get_job(int(text))
    if job is None or not job.options.get("dry_run") or job.state != "done":
        return None
    if job.finished_at is None or utcnow() - job.finished_at > timedelta(seconds=PREVIEW_TTL_S):
        return None
    return job


def confirm(preview: ImportJob) -> int:
    """Queue the real import of a preview's file; return its job id (the same one if repeated)."""
    with write_transaction() as session:
        # Locked (PostgreSQL) or serialized (SQLite): a double click queues one import, not two.
        found = session.get(ImportJob, preview.id, with_for_update=True, populate_existing=True)
        if found is None:
            raise LookupError(preview.id)
        earlier = found.options.get("confirmed_job")
        if isinstance(earlier, int):
            return earlier
        job = ImportJob(
            state="queued",
            format=found.format,
            filename=found.filename,
            source=found.source,
            metrics=found.metrics,
            metrics_filename=found.metrics_filename,
            options={"dry_run": False, "list": bool(found.options.get("list"))},
            rows_read=0,
            rows_written=0,
            rows_rejected=0,
            progress_done=0,
            progress_total=len(found.source),
            warnings=[],
            attempts=0,
            created_by=audit.current_actor(),
        )
        session.add(job)
        session.flush()
        found.options = {**found.options, "confirmed_job": job.id}
        return int(job.id)


def purge_ended(days: float = KEEP_DAYS) -> int:
    """Delete jobs (file and report) that ended more than ``days`` ago; return how many."""
    cutoff = utcnow() - timedelta(days=days)
    with write_transaction() as session:
        old = sa.select(ImportJob.id).where(ImportJob.finished_at < cutoff)
        session.execute(sa.delete(ImportJobRow).where(ImportJobRow.job_id.in_(old)))
        result = session.execute(
            sa.delete(ImportJob)
            .where(ImportJob.finished_at < cutoff)
            .execution_options(synchronize_session=False)
        )
    return _rowcount(result)


# ---- reading a job back ----------------------------------------------------------------------


def get_job(job_id: int) -> ImportJob | None:
    """Return the job with this id, read afresh, or None."""
    return db.session.get(ImportJob, job_id, populate_existing=True)


def job_rows(job_id: int, outcome: str | None = None, limit: int | None = None) -> list[RowReport]:
    """Return the job's report rows (of one outcome) in file order."""
    query = sa.select(ImportJobRow).where(ImportJobRow.job_id == job_id)
    if outcome is not None:
        query = query.where(ImportJobRow.outcome == outcome)
    query = query.order_by(ImportJobRow.row).limit(limit)
    return [
        RowReport(
            row=r.row,
            outcome=_OUTCOMES[r.outcome],
            title=r.title,
            external_id=r.external_id,
            campaign_id=r.campaign_id,
            fields=dict(r.fields or {}),
            line=r.line,
        )
        for r in db.session.scalars(query)
    ]


def job_report(job: ImportJob) -> ImportReport:
    """Return the job's report as an ImportReport (rows committed so far)."""
    elapsed = 0.0
    if job.started_at is not None:
        elapsed = ((job.finished_at or utcnow()) - job.started_at).total_seconds()
    return ImportReport(
        format=job.format or "",
        dry_run=bool(job.options.get("dry_run")),
        rows=job_rows(job.id),
        warnings=list(job.warnings or []),
        error=job.error if job.state == "done" else None,
        elapsed_s=elapsed,
    )


def fraction(job: ImportJob) -> float:
    """Return how far the job has read its file, 0 to 1."""
    if job.state == "done":
        return 1.0
    return min(1.0, job.progress_done / job.progress_total) if job.progress_total else 0.0


# ---- running jobs ----------------------------------------------------------------------------


def run_pending(job_id: int | None = None, *, stale_s: float = STALE_S) -> int:
    """Claim and run jobs (only ``job_id`` if given) until none is left; return how many ran."""
    ran = 0
    while (held := claim(job_id, stale_s=stale_s)) is not None:
        run(held)
        ran += 1
        if job_id is not None:
            break
    return ran


def submitted(job_id: int) -> None:
    """Have a just-queued job run: inline with ``INDEX_SYNC`` (tests), else by the worker."""
    app = current_app
    # IMPORT_INLINE (tests only, default INDEX_SYNC): False leaves the job queued for a worker.
    if app.config.get("IMPORT_INLINE", app.config["INDEX_SYNC"]):
        run_pending(job_id)
        return
    if app.config["INDEX_SYNC"]:
        return
    worker: BackgroundLoop | None = app.extensions.get(_WORKER)
    if worker is None:
        start_worker(app)
        worker = app.extensions.get(_WORKER)
    if worker is not None:
        worker.wake()


_WORKER = "kb.import_worker"


def start_worker(app: Flask) -> None:
    """Start this process's import worker thread once (not with ``INDEX_SYNC``, as in tests)."""
    start_once(app, _WORKER, lambda: BackgroundLoop(app, "kb-imports", POLL_S, _run_claimed))


def _run_claimed() -> None:
    """Run every job that can be claimed now (in the worker thread's app context)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    while (held := claim()) is not None:
        job = _load(held.job_id)
        # Writes are recorded (history, audit) as the uploader's, not the thread's.
        with app.test_request_context("/imports"):
            g.kb_actor = job.created_by
            run(held)
