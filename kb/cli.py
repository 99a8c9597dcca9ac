"""Command-line commands: ``flask --app kb demo``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from kb.demo import load_demo


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(demo_command)


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Load the demo campaigns (creates or updates them; safe to run again)."""
    report = load_demo()
    counts = report.counts
    click.echo(
        f"演示数据：新建 {counts['created']}，更新 {counts['updated']}，"
        f"未变 {counts['unchanged']}，拒绝 {len(report.rejected)}"
    )
    for external_id, fields in report.rejected.items():
        click.echo(f"  {external_id}: {fields}", err=True)
    if report.rejected:
        raise SystemExit(1)
