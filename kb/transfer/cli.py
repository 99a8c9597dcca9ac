"""``flask --app kb import PATH``: queue an import job, run it here with a progress bar, report."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import click
from flask.cli import with_appcontext

from ingest.errors import FileReadError
from ingest.readers import FORMAT_LABELS, FORMATS, Format
from kb.models import ImportJob
from kb.searching.console import drain_with_progress
from kb.transfer import jobs
from kb.transfer.imports import OUTCOME_LABELS, OUTCOMES, ImportReport
from kb.vocab import field_label

SHOWN_REJECTED = 50


@click.command(
    "import",
    help="Import campaigns from PATH ("
    + ", ".join(FORMAT_LABELS.values())
    + ").\n\nExits with status 1 when any row was rejected or the file could not be read.",
)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="文件格式；默认按扩展名和内容识别。",
)
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="单独的指标表（CSV/Excel），按活动编号、活动名称或行号对应到活动。",
)
@click.option("--dry-run", is_flag=True, help="只预览：报告将新建、更新、拒绝哪些行，不写入。")
@click.option(
    "--index/--no-index",
    default=False,
    help="导入后立即更新搜索索引（默认交给应用的后台索引器）。",
)
@with_appcontext
def import_command(
    path: Path, fmt: Format | None, metrics_path: Path | None, dry_run: bool, index: bool
) -> None:
    """Import a file with a progress bar, then print the summary (help: from the registry)."""
    metrics = metrics_path.read_bytes() if metrics_path else None
    source = path.read_bytes()
    try:
        found = jobs.probe(source, filename=path.name, fmt=fmt, metrics=metrics)
    except FileReadError as exc:
        raise click.ClickException(exc.message) from None
    # The same job as the page and the API queue (its report stored with it), run here and now.
    job_id = jobs.enqueue(
        source,
        filename=path.name,
        fmt=found,
        metrics=metrics,
        metrics_filename=metrics_path.name if metrics_path else None,
        dry_run=dry_run,
    ).id
    held = jobs.claim(job_id)
    if held is None:
        raise click.ClickException(f"导入任务 #{job_id} 已被其他进程领取")
    label = f"{'预览' if dry_run else '导入'} {path.name}（任务 #{job_id}）"
    with click.progressbar(length=1000, label=label, show_pos=False, show_percent=True) as bar:
        last = 0

        def progress(job: ImportJob) -> None:
            nonlocal last
            done = int(jobs.fraction(job) * 1000)
            if done > last:
                bar.update(done - last)
                last = done

        jobs.run(held, progress=progress)
        bar.update(1000 - last)
    job = jobs.get_job(job_id)
    if job is None:
        raise click.ClickException(f"导入任务 #{job_id} 不见了")
    report = jobs.job_report(job)
    _print_report(report)
    if job.state == "failed":
        click.echo(f"导入中断：{job.error}（上面列出的行已写入，其余未写入）", err=True)
    if index and not dry_run:
        drain_with_progress()
    if report.rejected or report.error or job.state == "failed":
        raise SystemExit(1)


def _print_report(report: ImportReport) -> None:
    counts = report.counts
    verb = "将" if report.dry_run else ""
    click.echo("")
    click.echo(_pad("结果", 8) + "行数".rjust(6))
    click.echo("-" * 18)
    for outcome in OUTCOMES:
        label = OUTCOME_LABELS[outcome]
        name = verb + label if outcome in ("created", "updated") else label
        click.echo(_pad(name, 8) + f"{counts[outcome]:>8}")
    click.echo("-" * 18)
    click.echo(_pad("合计", 8) + f"{len(report.rows):>8}")
    click.echo(f"用时 {report.elapsed_s:.1f} 秒，{report.rate:,.0f} 行/秒")
    if report.dry_run:
        click.echo("（预览：未写入任何数据）")
    for warning in report.warnings:
        click.echo(f"注意：{warning}", err=True)
    if report.error:
        click.echo(f"文件未读完：{report.error}", err=True)
    rejected = report.rejected
    for row in rejected[:SHOWN_REJECTED]:
        where = f"第 {row.row} 行" + (f"（{row.title}）" if row.title else "")
        reasons = "；".join(
            f"{field_label(path) if path else '整行'}：{message}"
            for path, message in row.fields.items()
        )
        click.echo(f"拒绝 {where}：{reasons}", err=True)
    if len(rejected) > SHOWN_REJECTED:
        click.echo(f"……另有 {len(rejected) - SHOWN_REJECTED} 行被拒绝", err=True)


def _pad(text: str, width: int) -> str:
    """Left-align by display width: a Chinese character takes two columns in a terminal."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - shown)
