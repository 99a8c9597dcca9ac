"""The import and export endpoints of the JSON API."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest

from ingest.errors import FileReadError
from ingest.jsonfile import ListReader
from ingest.readers import FORMATS
from kb.access import Access, requires
from kb.api import bp
from kb.api.operation import operation, respond
from kb.campaigns.queries import CampaignFilter
from kb.campaigns.schemas import FilterQuery, validate_list_query
from kb.errors import ApiError
from kb.transfer import exports as exporters
from kb.transfer.downloads import export_response
from kb.transfer.exports import EXPORT_FORMATS, MIMETYPES
from kb.transfer.imports import ImportReport, import_stream, run_import
from kb.transfer.schemas import (
    ExportPath,
    ImportJsonIn,
    ImportQuery,
    ImportReportOut,
    ImportUploadIn,
    report_out,
)
from kb.validation import InvalidInputError

_TRUE = {"1", "true", "yes", "on"}


@bp.post("/imports")
@requires(Access.EDIT)
@operation(
    query=ImportQuery,
    body={"multipart/form-data": ImportUploadIn, "application/json": ImportJsonIn},
    response=ImportReportOut,
    returns="逐行结果：新建、更新、未变、拒绝（含行号与字段错误）",
    errors=(400, 413, 415, 422),
)
def import_campaigns() -> Response:
    """导入活动 (Import campaigns from a file or a JSON list; dry_run previews)."""
    if request.mimetype == "multipart/form-data":
        report = _import_upload()
    elif request.is_json:
        report = _import_json()
    else:
        raise ApiError(
            415,
            "请求体须为 multipart/form-data（上传文件，字段 file）或 application/json（活动列表）",
        )
    return respond(report_out(report), exclude_unset=True)


def _flag(value: Any, name: str = "dry_run") -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in ("", "0", "false", "no", "off"):
            return text in _TRUE
    raise InvalidInputError({name: "应为是/否 (true/false)"})


def _import_upload() -> ImportReport:
    file: FileStorage | None = request.files.get("file")
    if file is None or not file.filename:
        raise InvalidInputError({"file": "必填：请用字段 file 上传文件"})
    fmt = request.form.get("format") or request.args.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        raise InvalidInputError({"format": "取值须为以下之一：" + ", ".join(FORMATS)})
    dry_run = _flag(request.form.get("dry_run", request.args.get("dry_run")))
    metrics = request.files.get("metrics")
    try:
        return import_stream(
            file.stream,
            filename=file.filename,
            fmt=next((f for f in FORMATS if f == fmt), None),
            metrics=metrics.stream if metrics is not None and metrics.filename else None,
            dry_run=dry_run,
        )
    except FileReadError as exc:
        raise InvalidInputError({"file": exc.message}) from None


def _import_json() -> ImportReport:
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
    return run_import(ListReader(body), fmt="json", dry_run=dry_run)


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
