"""The import and export endpoints of the JSON API."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import Response, request, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest

from ingest.errors import FileReadError
from ingest.readers import FORMATS
from kb import outbox
from kb.access import Access, requires
from kb.api import bp
from kb.api.operation import operation, respond
from kb.campaigns.queries import CampaignFilter
from kb.campaigns.schemas import FilterQuery, validate_list_query
from kb.errors import ApiError
from kb.models import ImportJob, ImportJobRow
from kb.transfer import exports as exporters
from kb.transfer import jobs
from kb.transfer.downloads import export_response
from kb.transfer.exports import EXPORT_FORMATS, MIMETYPES
from kb.transfer.schemas import (
    ExportPath,
    ImportJobOut,
    ImportJobPath,
    ImportJsonIn,
    ImportQuery,
    ImportUploadIn,
    job_out,
)
from kb.validation import InvalidInputError

_TRUE = {"1", "true", "yes", "on"}


@bp.post("/imports")
@requires(Access.EDIT)
@operation(
    query=ImportQuery,
    body={"multipart/form-data": ImportUploadIn, "application/json": ImportJsonIn},
    response=ImportJobOut,
    status=202,
    headers=("Location", "Index-Seq"),
    returns="导入任务已排队：轮询 Location（GET /api/v1/imports/{job_id}）查看进度与逐行结果",
    errors=(400, 413, 415, 422),
)
def import_campaigns() -> Response:
    """导入活动 (Queue an import of a file or a JSON list; dry_run previews)

    The import runs in the background as a job: the answer (202) is the job, and ``Location``
    names it. Rows are committed in batches together with their report, so a job that fails
    part-way says exactly which rows were written. A file that cannot be read at all is
    refused at once (422).
    """
    if request.mimetype == "multipart/form-data":
        job = _queue_upload()
    elif request.is_json:
        job = _queue_json()
    else:
        raise ApiError(
            415,
            "请求体须为 multipart/form-data（上传文件，字段 file）或 application/json（活动列表）",
        )
    job_id = job.id
    jobs.submitted(job_id)
    return _job_response(job_id, 202)


@bp.get("/imports/<int:job_id>")
@requires(Access.EDIT)
@operation(
    path=ImportJobPath,
    response=ImportJobOut,
    headers=("Index-Seq",),
    returns="导入任务：状态、进度；结束后（done / failed）附逐行结果",
    errors=(404,),
)
def get_import(job_id: int) -> Response:
    """查看导入任务 (An import job: its state, progress and, once ended, its report)"""
    return _job_response(job_id, 200)


def _job_response(job_id: int, status: int) -> Response:
    job = jobs.get_job(job_id)
    if job is None:
        raise ApiError(404, "找不到该导入任务")
    report = jobs.job_report(job) if job.state in ("done", "failed") else None
    location = url_for("api.get_import", job_id=job.id)
    body = job_out(job, report)
    headers = {"Location": location}
    if not body.dry_run:
        # The newest feed entry of what the job wrote so far: poll the index status for it.
        written = sa.select(ImportJobRow.campaign_id).where(
            ImportJobRow.job_id == job.id, ImportJobRow.campaign_id.is_not(None)
        )
        body.index_seq = outbox.campaigns_seq(written)
        body.indexed = outbox.is_indexed(body.index_seq)
        headers.update(outbox.write_headers(body.index_seq))
    return respond(body, status, headers, exclude_unset=True)


def _flag(value: Any, name: str = "dry_run") -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in ("", "0", "false", "no", "off"):
            return text in _TRUE
    raise InvalidInputError({name: "应为是/否 (true/false)"})


def _queue_upload() -> ImportJob:
    file: FileStorage | None = request.files.get("file")
    if file is None or not file.filename:
        raise InvalidInputError({"file": "必填：请用字段 file 上传文件"})
    fmt = request.form.get("format") or request.args.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        raise InvalidInputError({"format": "取值须为以下之一：" + ", ".join(FORMATS)})
    dry_run = _flag(request.form.get("dry_run", request.args.get("dry_run")))
    metrics_file = request.files.get("metrics")
    metrics = metrics_file.read() if metrics_file is not None and metrics_file.filename else None
    source = file.read()
    try:
        found = jobs.probe(source, filename=file.filename, fmt=fmt, metrics=metrics)
    except FileReadError as exc:
        raise InvalidInputError({"file": exc.message}) from None
    return jobs.enqueue(
        source,
        filename=file.filename,
        fmt=found,
        metrics=metrics,
        metrics_filename=metrics_file.filename if metrics is not None and metrics_file else None,
        dry_run=dry_run,
    )


def _queue_json() -> ImportJob:
    try:
        body = request.get_json()
    except BadRequest:
        raise ApiError(400, "请求体不是合法的 JSON", code="malformed_json") from None
    dry_run = _flag(request.args.get("dry_run"))
    if isinstance(body, dict):
        if "dry_run" in body:
            dry_run = _flag(body["dry_run"])
        body = body.get("campaigns")
    if not isinstance(body, list):
        raise InvalidInputError({"campaigns": '应为活动列表：[{...}, ...] 或 {"campaigns": [...]}'})
    # Escaped as ASCII: a lone surrogate ("\ud800") stays an escape for its row to be refused,
    # where encoding it as UTF-8 would fail the whole request.
    source = json.dumps(body).encode()
    return jobs.enqueue(source, fmt="json", dry_run=dry_run, as_list=True)


@bp.get("/campaigns/export.<fmt>")
@requires(Access.READ)
@operation(
    path=ExportPath,
    query=FilterQuery,
    files=tuple(dict.fromkeys(mimetype.split(";")[0] for mimetype in MIMETYPES.values())),
    returns="导出文件（可再次导入）",
    errors=(404, 422),
)
def export_campaigns(fmt: str) -> Response:
    """导出活动列表 (Export the filtered campaign list as CSV, Excel or JSON Lines)."""
    if fmt not in EXPORT_FORMATS:
        raise ApiError(404, "导出格式须为 csv、xlsx 或 jsonl")
    query = validate_list_query(request.args.to_dict())
    filters = CampaignFilter(
        industry=query.industry,
        goal_type=query.goal_type,
        status=query.status,
        date_from=query.date_from,
        date_to=query.date_to,
    )
    return export_response(exporters.iter_campaigns(filters), fmt, "campaigns")
