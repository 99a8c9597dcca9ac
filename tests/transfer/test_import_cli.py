"""``flask --app kb import``: progress, a summary table, the rate, and the exit status."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from kb.extensions import db
from kb.models import Campaign, ImportJob

Sample = Callable[[str], Path]


def count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Campaign.id))) or 0


def test_a_clean_file_imports_and_exits_zero(
    app: Flask, runner: FlaskCliRunner, sample: Sample
) -> None:
    result = runner.invoke(args=["import", str(sample("campaigns.json"))])
    assert result.exit_code == 0, result.output
    assert "导入 campaigns.json" in result.output  # the progress bar's label
    assert re.search(r"^新建 +3$", result.output, re.M)
    assert "行/秒" in result.output
    assert count(app) == 3
    again = runner.invoke(args=["import", str(sample("campaigns.json"))])
    assert re.search(r"^未变 +3$", again.output, re.M)


def test_rejected_rows_are_listed_and_exit_non_zero(
    app: Flask, runner: FlaskCliRunner, sample: Sample
) -> None:
    result = runner.invoke(args=["import", str(sample("campaigns_gbk.csv"))])
    assert result.exit_code == 1
    assert (
        "拒绝 第 5 行（宝贝优选 会员积分商城上新）：目标类型：取值须为以下之一：拉新、促活"
        in result.output
    )
    assert "注意：已忽略不认识的列：负责人" in result.output
    assert count(app) == 3


def test_dry_run_writes_nothing(app: Flask, runner: FlaskCliRunner, sample: Sample) -> None:
    result = runner.invoke(
        args=["import", "--dry-run", "--metrics", str(sample("campaigns_main_metrics.csv")),
              str(sample("campaigns_main.csv"))]
    )  # fmt: skip
    assert result.exit_code == 0  # the unreadable value is left empty, its row kept
    assert re.search(r"^将新建 +2$", result.output, re.M)
    assert "指标文件第 5 行 获客成本 实际值 “abc” 无法识别为数字，已留空" in result.output
    assert "（预览：未写入任何数据）" in result.output
    assert count(app) == 0


def test_format_option_and_unreadable_files(
    app: Flask, runner: FlaskCliRunner, sample: Sample, tmp_path: Path
) -> None:
    result = runner.invoke(args=["import", "--format", "jsonl", str(sample("campaigns.json"))])
    assert result.exit_code == 1  # a pretty-printed array is not JSON Lines: every line is rejected
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04junk")
    result = runner.invoke(args=["import", str(broken)])
    assert result.exit_code == 1
    assert "无法读取 Excel 文件" in result.output


def test_index_option_updates_the_search_index(
    app: Flask, runner: FlaskCliRunner, sample: Sample
) -> None:
    result = runner.invoke(args=["import", "--index", str(sample("retro_618.md"))])
    assert result.exit_code == 0, result.output
    client = app.test_client()
    found = client.get("/api/v1/search?q=预售&mode=keyword").get_json()
    assert [r["title"] for r in found["results"]] == ["2024 618 生鲜大促：预售 + 次日达"]


def test_the_command_runs_a_stored_job(app: Flask, runner: FlaskCliRunner, sample: Sample) -> None:
    result = runner.invoke(args=["import", str(sample("campaigns.json"))])
    assert result.exit_code == 0, result.output
    assert "（任务 #" in result.output
    with app.app_context():
        job = db.session.scalar(sa.select(ImportJob))
        assert job is not None
        assert (job.state, job.rows_read, job.rows_written) == ("done", 3, 3)
        assert job.created_by.startswith("cli")
        assert job.source == b""  # imported: the file's bytes are not kept
