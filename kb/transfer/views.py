"""Import and export pages: the import page, exports of lists and search results.

Web pages (``bp``): upload → preview (a dry run, errors by row) → confirm, each run as a
background job (kb/transfer/jobs.py) whose page shows its progress; a Word/PowerPoint
retro that lacks fields opens in the campaign form to be completed; CSV/Excel/JSON Lines exports
of the campaign list and of a search result; one campaign as Markdown or as a printable page.
Their JSON API (``POST /api/v1/imports``, ``GET /api/v1/campaigns/export.<fmt>``) is in
kb/transfer/api.py.
"""

from __future__ import annotations

import dataclasses
import io
import re
from typing import Any

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
    url_for,
)
from flask.typing import ResponseReturnValue

from ingest import cells
from ingest.columns import FIELD_COLUMNS, mapping_table
from ingest.errors import FileReadError
from ingest.readers import (
    EXTENSIONS,
    FORMAT_LABELS,
    FORMATS,
    METRICS_FORMATS,
    REGISTRY,
    SINGLE_FORMATS,
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
from kb.models import Campaign, ImportJob
from kb.searching.schemas import SearchQuery, search_params, validate_search_query
from kb.transfer import exports as exporters
from kb.transfer import jobs, preview
from kb.transfer.downloads import attachment, export_response
from kb.transfer.exports import EXPORT_FORMATS
from kb.transfer.imports import OUTCOME_LABELS
from kb.transfer.saving import save as save_campaign
from kb.validation import InvalidInputError

bp = Blueprint("transfer", __name__)


@bp.before_app_request
def _start_import_worker() -> None:
    # As the indexer does for ``flask run``: gunicorn.conf.py starts it earlier, at worker boot.
    jobs.start_worker(current_app._get_current_object())  # type: ignore[attr-defined]


PREVIEW_ROWS = 300
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
    """Queue a preview (a dry-run job) of the uploaded file and show its progress."""
    file = request.files.get("file")
    if file is None or not file.filename:
        return _upload_page("请选择要导入的文件"), 422
    fmt = request.form.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        return _upload_page("不支持的格式：" + fmt), 422
    metrics_file = request.files.get("metrics")
    has_metrics = metrics_file is not None and bool(metrics_file.filename)
    metrics = metrics_file.read() if metrics_file is not None and has_metrics else None
    source = file.read()
    try:
        found = jobs.probe(source, filename=file.filename, fmt=fmt, metrics=metrics)
    except FileReadError as exc:
        return _upload_page(exc.message), 422
    job = jobs.enqueue(
        source,
        filename=file.filename,
        fmt=found,
        metrics=metrics,
        metrics_filename=metrics_file.filename
        if metrics_file is not None and has_metrics
        else None,
        dry_run=True,
    )
    return _submitted(job.id)


def _submitted(job_id: int) -> ResponseReturnValue:
    jobs.submitted(job_id)
    return redirect(url_for("transfer.import_job", job_id=job_id), 303)


@bp.get("/import/jobs/<int:job_id>")
@requires(Access.EDIT)
def import_job(job_id: int) -> ResponseReturnValue:
    """Show a job: its progress while it runs, then its preview or its result."""
    job = jobs.get_job(job_id)
    if job is None:
        abort(404)
    if job.state in ("queued", "running"):
        return render_template(
            "imports/progress.html",
            job=job,
            percent=int(jobs.fraction(job) * 100),
            state_label=jobs.STATE_LABELS[job.state],
        )
    report = jobs.job_report(job)
    if job.state == "done" and report.dry_run:
        shown = [
            r for i, r in enumerate(report.rows) if i < PREVIEW_ROWS or r.outcome == "rejected"
        ]
        # The values of the first rows as read, each value left empty named on its row (and so
        # not repeated in the file's warnings above the table).
        values = preview.read_values(job, {r.row for r in shown[:PREVIEW_ROWS]})
        on_rows = {w for row in values.values() for w in row.warnings}
        report = dataclasses.replace(
            report, warnings=[w for w in report.warnings if w not in on_rows]
        )
        return render_template(
            "imports/preview.html",
            report=report,
            job=job,
            shown=shown,
            values=values,
            hidden=len(report.rows) - len(shown),
            outcome_labels=OUTCOME_LABELS,
            field_label=field_label,
            single=report.format in SINGLE_FORMATS,
            format_label=_FORMAT_NAMES.get(report.format, report.format),
        )
    return render_template(
        "imports/result.html",
        report=report,
        job=job,
        outcome_labels=OUTCOME_LABELS,
        field_label=field_label,
    )


@bp.get("/import/jobs/<int:job_id>/progress")
@requires(Access.EDIT)
def import_job_progress(job_id: int) -> Response:
    """Answer a job's progress as JSON, for the progress page's script (imports.js)."""
    job = jobs.get_job(job_id)
    if job is None:
        abort(404)
    return jsonify(
        state=job.state,
        label=jobs.STATE_LABELS[job.state],
        rows_read=job.rows_read,
        rows_rejected=job.rows_rejected,
        percent=int(jobs.fraction(job) * 100),
        ended=job.state in ("done", "failed"),
    )


@bp.post("/import/confirm")
@requires(Access.EDIT)
def import_confirm() -> ResponseReturnValue:
    """Import for real what a preview showed (a new job on the same stored file)."""
    preview = jobs.preview_job(request.form.get("job", ""))
    if preview is None:
        return _upload_page("预览已过期或不存在（预览后一小时内有效），请重新上传"), 410
    return _submitted(jobs.confirm(preview))


@bp.route("/import/draft/<token>", methods=["GET", "POST"])
@requires(Access.EDIT)
def import_draft(token: str) -> ResponseReturnValue:
    """Open an imported document in the campaign form, to complete what the file did not say."""
    preview = jobs.preview_job(token)
    if preview is None:
        flash("上传已过期或不存在，请重新上传。", "error")
        return redirect(url_for("transfer.import_page"))
    if request.method == "GET":
        data = _first_record(preview)
        try:
            validate_campaign(data)
            errors: dict[str, str] = {}
        except InvalidInputError as exc:
            errors = exc.fields
        flash(
            f"已从“{preview.filename}”读出能识别的内容（原文保存在“文档”中）。"
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


def _first_record(job: ImportJob) -> dict[str, Any]:
    source = io.BytesIO(job.source)
    fmt = format_named(job.format) or detect_format(job.filename, source)
    try:
        reader = open_reader(fmt, source, filename=job.filename)
        first = next(iter(reader.rows()), None)
    except FileReadError:
        first = None
    return dict(first.data or {}) if first is not None else {}


# ---- exports ---------------------------------------------------------------------------------


def _list_filter(args: dict[str, str]) -> CampaignFilter:
    try:
        query = validate_list_query(args)
    except InvalidInputError as exc:
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


@bp.get("/campaigns/export.<fmt>")
@requires(Access.READ)
def export_list(fmt: str) -> Response:
    if fmt not in EXPORT_FORMATS:
        abort(404)
    filters = _list_filter(request.args.to_dict())
    return export_response(exporters.iter_campaigns(filters), fmt, "campaigns")


@bp.get("/search/export.<fmt>")
@requires(Access.READ)
def export_search(fmt: str) -> Response:
    if fmt not in EXPORT_FORMATS:
        abort(404)
    return export_response(exporters.iter_search(_search_query()), fmt, "search")


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
        content_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": attachment(f"{name}.md", f"campaign-{campaign.id}.md")},
    )


@bp.get("/campaigns/<int:campaign_id>/print")
@requires(Access.READ)
def print_page(campaign_id: int) -> str:
    campaign = _campaign_or_404(campaign_id)
    metrics = [metric_to_dict(m) for m in campaign.metrics]
    return render_template("campaigns/print.html", campaign=campaign, metrics=metrics)
