"""Import and export: the import page, exports of lists and search results, and their API.

Web pages (``bp``): upload → preview (a dry run, errors by row) → confirm; a Word/PowerPoint
retro that lacks fields opens in the campaign form to be completed; CSV/Excel/JSON Lines exports
of the campaign list and of a search result; one campaign as Markdown or as a printable page.
API (``api_bp``): ``POST /api/v1/imports`` and ``GET /api/v1/campaigns/export.<fmt>``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from datetime import date
from typing import IO, Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest

from ingest import cells
from ingest.columns import FIELD_COLUMNS, mapping_table
from ingest.errors import FileReadError
from ingest.jsonfile import ListReader
from ingest.readers import (
    EXTENSIONS,
    FORMAT_LABELS,
    FORMATS,
    METRICS_FORMATS,
    REGISTRY,
    SINGLE_FORMATS,
    Format,
    detect_format,
    format_named,
    open_reader,
)
from kb import vocab as labels
from kb.access import Access, requires
from kb.campaigns import forms, services
from kb.campaigns.queries import CampaignFilter
from kb.campaigns.schemas import ListQuery, validate_campaign, validate_list_query
from kb.campaigns.serialize import metric_to_dict
from kb.errors import ApiError, api_error_response
from kb.extensions import csrf
from kb.models import Campaign
from kb.searching.schemas import SearchQuery, search_params, validate_search_query
from kb.transfer import exports as exporters
from kb.transfer import uploads
from kb.transfer.exports import EXPORT_FORMATS, MIMETYPES
from kb.transfer.imports import OUTCOME_LABELS, ImportReport, import_stream, run_import
from kb.transfer.saving import save as save_campaign
from kb.validation import InvalidInputError

bp = Blueprint("transfer", __name__)
api_bp = Blueprint("transfer_api", __name__, url_prefix="/api/v1")
# API clients authenticate per request, not with a browser session: CSRF does not apply.
csrf.exempt(api_bp)

PREVIEW_ROWS = 300
_TRUE = {"1", "true", "yes", "on"}
_FORMAT_NAMES: dict[str, str] = {str(k): v for k, v in FORMAT_LABELS.items()}
_PART_LABELS = {
    "name": "名称", "unit": "单位", "baseline": "基线", "target": "目标", "actual": "实际",
    "type": "类型", "detail": "说明", "stackable": "可叠加", "statement": "假设",
    "result": "结果", "evidence": "依据", "title": "标题", "kind": "类型", "body": "正文",
}  # fmt: skip


def field_label(path: str) -> str:
    """Name a field path the way the sheet does: "metrics.0.target" → "指标 第 1 项 目标"."""
    if not path:
        return "整行"
    parts = path.split(".")
    words = [FIELD_COLUMNS[parts[0]][0] if parts[0] in FIELD_COLUMNS else parts[0]]
    for part in parts[1:]:
        words.append(f"第 {int(part) + 1} 项" if part.isdigit() else _PART_LABELS.get(part, part))
    return " ".join(words)


# ---- import page -----------------------------------------------------------------------------


@bp.get("/import")
@requires(Access.EDIT)
def import_page() -> str:
    return _upload_page()


def _upload_page(error: str | None = None) -> str:
    return render_template(
        "imports/upload.html",
        error=error,
        formats=FORMAT_LABELS,
        accept=",".join(EXTENSIONS),
        metrics_formats=[REGISTRY[name] for name in METRICS_FORMATS],
        mapping=mapping_table(),
    )


@bp.post("/import")
@requires(Access.EDIT)
def import_preview() -> ResponseReturnValue:
    file = request.files.get("file")
    if file is None or not file.filename:
        return _upload_page("请选择要导入的文件"), 422
    fmt = request.form.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        return _upload_page("不支持的格式：" + fmt), 422
    upload = uploads.store(_data_dir(), file, request.files.get("metrics"), fmt)
    try:
        report = _run_upload(upload, dry_run=True)
    except FileReadError as exc:
        uploads.remove(upload.folder)
        return _upload_page(exc.message), 422
    shown = [r for i, r in enumerate(report.rows) if i < PREVIEW_ROWS or r.outcome == "rejected"]
    return render_template(
        "imports/preview.html",
        report=report,
        upload=upload,
        shown=shown,
        hidden=len(report.rows) - len(shown),
        outcome_labels=OUTCOME_LABELS,
        field_label=field_label,
        single=report.format in SINGLE_FORMATS,
        format_label=_FORMAT_NAMES.get(report.format, report.format),
    )


@bp.post("/import/confirm")
@requires(Access.EDIT)
def import_confirm() -> ResponseReturnValue:
    upload = uploads.load(_data_dir(), request.form.get("token", ""))
    if upload is None:
        return _upload_page("上传已过期或不存在（预览后一小时内有效），请重新上传"), 410
    try:
        report = _run_upload(upload, dry_run=False)
    except FileReadError as exc:
        return _upload_page(exc.message), 422
    finally:
        uploads.remove(upload.folder)
    return render_template(
        "imports/result.html",
        report=report,
        outcome_labels=OUTCOME_LABELS,
        field_label=field_label,
    )


@bp.route("/import/draft/<token>", methods=["GET", "POST"])
@requires(Access.EDIT)
def import_draft(token: str) -> ResponseReturnValue:
    """Open an imported document in the campaign form, to complete what the file did not say."""
    upload = uploads.load(_data_dir(), token)
    if upload is None:
        flash("上传已过期或不存在，请重新上传。", "error")
        return redirect(url_for("transfer.import_page"))
    if request.method == "GET":
        data = _first_record(upload)
        try:
            validate_campaign(data)
            errors: dict[str, str] = {}
        except InvalidInputError as exc:
            errors = exc.fields
        flash(
            f"已从“{upload.filename}”读出能识别的内容（原文保存在“文档”中）。"
            "请补全标出的字段后保存。",
            "success",
        )
        return _render_form(form_state(data), errors)
    state, data = forms.parse_form(request.form)
    add_row = request.form.get("add_row")
    if add_row:
        forms.add_blank_row(state, add_row)
        return _render_form(state, {})
    try:
        campaign, outcome = save_campaign(validate_campaign(data))
    except InvalidInputError as exc:
        return _render_form(state, exc.fields, status=422)
    uploads.remove(upload.folder)
    flash("活动已创建。" if outcome == "created" else "已更新同名、同日期的活动。", "success")
    return redirect(url_for("pages.campaign_detail", campaign_id=campaign.id))


def _render_form(
    state: dict[str, Any], errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    body = render_template(
        "campaigns/form.html",
        state=state,
        errors=errors,
        campaign=None,
        conflict=None,
        industries=labels.INDUSTRIES,
    )
    return body if status == 200 else (body, status)


def form_state(data: dict[str, Any]) -> dict[str, Any]:
    """Return the campaign form's state for an imported (maybe incomplete) record."""
    state = forms.empty_state()
    for name in forms.SCALARS:
        if data.get(name) is not None:
            state[name] = _form_text(data[name])
    for name in forms.LISTS:
        value = data.get(name)
        state[name] = "、".join(map(str, value)) if isinstance(value, list) else _form_text(value)
    for section, fields in forms.ROWS.items():
        items = data.get(section)
        state[section] = [
            {
                name: ("on" if item.get(name) is True else "")
                if name == "stackable"
                else _form_text(item.get(name))
                for name in fields
            }
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
        ]
    return state


def _form_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return cells.format_number(value)
    return str(value)


def _data_dir() -> str:
    return str(current_app.config["DATA_DIR"])


def _run_upload(upload: uploads.Upload, *, dry_run: bool) -> ImportReport:
    with ExitStack() as stack:
        source = stack.enter_context(upload.source.open("rb"))
        metrics = stack.enter_context(upload.metrics.open("rb")) if upload.metrics else None
        return import_stream(
            source,
            filename=upload.filename,
            fmt=_format(upload.format),
            metrics=metrics,
            dry_run=dry_run,
        )


def _format(value: str | None) -> Format | None:
    return format_named(value)


def _first_record(upload: uploads.Upload) -> dict[str, Any]:
    with upload.source.open("rb") as source:
        fmt = _format(upload.format) or detect_format(upload.filename, source)
        try:
            reader = open_reader(fmt, source, filename=upload.filename)
            first = next(iter(reader.rows()), None)
        except FileReadError:
            first = None
    return dict(first.data or {}) if first is not None else {}


# ---- exports ---------------------------------------------------------------------------------


def _list_filter(args: dict[str, str]) -> CampaignFilter:
    try:
        query = validate_list_query(args)
    except InvalidInputError as exc:
        if request.path.startswith("/api/"):
            raise
        # As on the list page: the bad filters are ignored, the others apply.
        query = validate_list_query({k: v for k, v in args.items() if k not in exc.fields})
    return _filter_of(query)


def _filter_of(query: ListQuery) -> CampaignFilter:
    return CampaignFilter(
        industry=query.industry,
        goal_type=query.goal_type,
        status=query.status,
        date_from=query.date_from,
        date_to=query.date_to,
    )


def _search_query() -> SearchQuery:
    args = search_params(request.args)
    try:
        return validate_search_query(args)
    except InvalidInputError as exc:
        bad = {key.split(".")[0] for key in exc.fields}
        return validate_search_query({k: v for k, v in args.items() if k not in bad})


def _export(campaigns: Iterable[Campaign], fmt: str, stem: str) -> Response:
    filename = f"{stem}-{date.today().isoformat()}.{fmt}"
    chunks: Iterator[str] | Iterator[bytes]
    if fmt == "xlsx":
        # Spooled: a small workbook stays in memory, a large one goes to a temporary file.
        target = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115  # closed by _file_chunks
        try:
            exporters.write_xlsx(campaigns, target)
        except BaseException:
            target.close()
            raise
        target.seek(0)
        chunks = _file_chunks(target)
    elif fmt == "csv":
        chunks = exporters.csv_chunks(campaigns)
    else:
        chunks = exporters.jsonl_chunks(campaigns)
    return Response(
        stream_with_context(chunks),
        mimetype=MIMETYPES[fmt],
        headers={"Content-Disposition": _attachment(filename, filename)},
    )


def _file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(64 * 1024):
            yield chunk
    finally:
        handle.close()


def _attachment(filename: str, fallback: str) -> str:
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", fallback)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@bp.get("/campaigns/export.<fmt>")
@requires(Access.READ)
def export_list(fmt: str) -> Response:
    if fmt not in EXPORT_FORMATS:
        abort(404)
    filters = _list_filter(request.args.to_dict())
    return _export(exporters.iter_campaigns(filters), fmt, "campaigns")


@bp.get("/search/export.<fmt>")
@requires(Access.READ)
def export_search(fmt: str) -> Response:
    if fmt not in EXPORT_FORMATS:
        abort(404)
    return _export(exporters.iter_search(_search_query()), fmt, "search")


def _campaign_or_404(campaign_id: int) -> Campaign:
    try:
        return services.get_campaign(campaign_id)
    except services.NotFoundError:
        abort(404)


@bp.get("/campaigns/<int:campaign_id>/export.md")
@requires(Access.READ)
def export_markdown(campaign_id: int) -> Response:
    campaign = _campaign_or_404(campaign_id)
    name = re.sub(r'[\\/:*?"<>|\r\n]+', " ", campaign.title).strip() or f"campaign-{campaign.id}"
    return Response(
        exporters.campaign_markdown(campaign),
        mimetype="text/markdown; charset=utf-8",
        headers={"Content-Disposition": _attachment(f"{name}.md", f"campaign-{campaign.id}.md")},
    )


@bp.get("/campaigns/<int:campaign_id>/print")
@requires(Access.READ)
def print_page(campaign_id: int) -> str:
    campaign = _campaign_or_404(campaign_id)
    metrics = [metric_to_dict(m) for m in campaign.metrics]
    return render_template("campaigns/print.html", campaign=campaign, metrics=metrics)


# ---- API -------------------------------------------------------------------------------------


@api_bp.errorhandler(InvalidInputError)
def _invalid(exc: InvalidInputError) -> tuple[Response, int]:
    return api_error_response(ApiError(422, fields=exc.fields))


def _flag(value: Any, name: str = "dry_run") -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in ("", "0", "false", "no", "off"):
            return text in _TRUE
    raise InvalidInputError({name: "应为是/否 (true/false)"})


@api_bp.post("/imports")
@requires(Access.EDIT)
def api_import() -> Response:
    if request.mimetype == "multipart/form-data":
        report = _import_upload()
    elif request.is_json:
        report = _import_json()
    else:
        raise ApiError(
            415,
            "请求体须为 multipart/form-data（上传文件，字段 file）或 application/json（活动列表）",
        )
    return jsonify(report.to_dict())


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
            fmt=_format(fmt),
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


@api_bp.get("/campaigns/export.<fmt>")
@requires(Access.READ)
def api_export(fmt: str) -> Response:
    if fmt not in EXPORT_FORMATS:
        raise ApiError(404, "导出格式须为 csv、xlsx 或 jsonl")
    filters = _list_filter(request.args.to_dict())
    return _export(exporters.iter_campaigns(filters), fmt, "campaigns")


# ---- OpenAPI ---------------------------------------------------------------------------------


def openapi_paths() -> dict[str, Any]:
    """Return the OpenAPI path items of the import and export endpoints (to merge into the doc)."""
    from kb.transfer.openapi import paths

    return paths()
