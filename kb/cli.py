"""Command-line commands: ``flask --app kb demo | reindex | models prepare``."""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from kb.accounts.cli import tokens_group, users_group
from kb.backup import backup_command, restore_command
from kb.demo import load_demo
from kb.extensions import db
from kb.models import Campaign
from kb.searching import indexer
from kb.searching.console import drain_with_progress
from kb.transfer.cli import import_command


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(demo_command)
    app.cli.add_command(reindex_command)
    app.cli.add_command(models_group)
    app.cli.add_command(import_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(users_group)
    app.cli.add_command(tokens_group)


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Load the demo campaigns (creates or updates them; safe to run again), then index them."""
    report = load_demo()
    counts = report.counts
    click.echo(
        f"演示数据：新建 {counts['created']}，更新 {counts['updated']}，"
        f"未变 {counts['unchanged']}，拒绝 {len(report.rejected)}"
    )
    for external_id, fields in report.rejected.items():
        click.echo(f"  {external_id}: {fields}", err=True)
    indexer.reconcile()
    drain_with_progress()
    if report.rejected:
        raise SystemExit(1)


@click.command("reindex")
@with_appcontext
def reindex_command() -> None:
    """Rebuild the keyword index and the vectors from the database (embeddings are reused)."""
    total = db.session.scalar(
        sa.select(sa.func.count(Campaign.id)).where(Campaign.deleted_at.is_(None))
    )
    with click.progressbar(length=total or 0, label="重建索引") as bar:
        count = indexer.rebuild(progress=bar.update)
    click.echo(f"已重建索引：{count} 个活动")


models_group = AppGroup("models", help="Embedding models.")


@models_group.command("prepare")
def models_prepare() -> None:
    """Convert and load every configured model now (also done on first use)."""
    indexes = indexer.get_indexes()
    for embedder in indexes.embedders:
        click.echo(f"准备模型 {embedder.name} …")
        embedder.encode_queries(["预热"])
    models_dir = current_app.config["MODELS_DIR"] or Path(current_app.config["DATA_DIR"]) / "models"
    click.echo(f"模型已就绪（缓存目录 {models_dir}）")
