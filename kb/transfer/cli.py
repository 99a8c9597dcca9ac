"""``flask --app kb import PATH``: import a file with a progress bar and a summary table."""

from __future__ import annotations

import unicodedata
from contextlib import nullcontext
from pathlib import Path

import click
from flask.cli import with_appcontext

from ingest.errors import FileReadError
from ingest.readers import FORMAT_LABELS, FORMATS, Format
from kb.searching.console import drain_with_progress
from kb.transfer.imports import OUTCOME_LABELS, OUTCOMES, ImportReport, import_stream

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
    size = path.stat().st_size
    label = f"{'预览' if dry_run else '导入'} {path.name}"
    with (
        path.open("rb") as source,
        metrics_path.open("rb") if metrics_path else nullcontext() as metrics,
        click.progressbar(length=size, label=label, show_pos=False, show_percent=True) as bar,
    ):
        last = 0

        def progress(done: int, total: int) -> None:
            nonlocal last
            # Readers count bytes or rows; the bar shows the same fraction of the file.
            scaled = int(done / total * size) if total else 0
            if scaled > last:
                bar.update(scaled - last)
                last = scaled

        try:
            report = import_stream(
                source,
                filename=path.name,
                fmt=fmt,
                metrics=metrics,
                dry_run=dry_run,
                progress=progress,
            )
        except FileReadError as exc:
            raise click.ClickException(exc.message) from None
        bar.update(size - last)
    _print_report(report)
    if index and not dry_run:
        drain_with_progress()
    if report.rejected or report.error:
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
        reasons = "；".join(f"{path or '整行'}：{message}" for path, message in row.fields.items())
        click.echo(f"拒绝 {where}：{reasons}", err=True)
    if len(rejected) > SHOWN_REJECTED:
        click.echo(f"……另有 {len(rejected) - SHOWN_REJECTED} 行被拒绝", err=True)


def _pad(text: str, width: int) -> str:
    """Left-align by display width: a Chinese character takes two columns in a terminal."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - shown)
