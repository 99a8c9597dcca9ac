"""Export files a person would open (issue 16): Excel with widths, a frozen header, a filter, the
key metric's 达成率, readable documents and text shown as written; the key-metric choice carried
in CSV, Excel and Markdown (issue 13)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from tests.factories import campaign_payload

DOCUMENTS = [
    {"title": "执行方案", "kind": "plan", "body": "## 分层\n- 高价值会员先发券"},
    {"title": "复盘汇报", "kind": "deck", "body": "第 1 页：目标与结果"},
]


@pytest.fixture
def campaign_id(app: Flask) -> int:
    payload = campaign_payload(
        external_id="k-1",
        title="=HYPERLINK 式羊毛党复盘",
        went_well="- 企微社群分层触达，打开率 38%\n- 短信补发",
        problems="+ 短信限流",
        lessons="@运营 记得报备",
        documents=DOCUMENTS,
    )
    # The author chose 转化率, not the goal type's default, as the key metric.
    payload["metrics"][1]["key"] = True
    with app.app_context():
        return services.create_campaign(validate_campaign(payload)).id


def _workbook(client: FlaskClient, tmp_path: Path) -> object:
    path = tmp_path / "out.xlsx"
    response = client.get("/campaigns/export.xlsx")
    assert response.status_code == 200
    path.write_bytes(response.data)
    return load_workbook(path)


def test_excel_is_a_sheet_a_person_can_work_with(
    client: FlaskClient, campaign_id: int, tmp_path: Path
) -> None:
    workbook = _workbook(client, tmp_path)
    main = workbook["活动"]  # type: ignore[index]
    headers = [cell.value for cell in main[1]]
    assert main.freeze_panes == "C2"
    assert main.auto_filter.ref == f"A1:{main.cell(1, len(headers)).column_letter}2"
    assert main.column_dimensions["B"].width == 36  # 活动名称
    assert all(main.column_dimensions[c.column_letter].width for c in main[1])
    assert main["A1"].font.b

    row = dict(zip(headers, (cell for cell in main[2]), strict=True))
    # Text starting with "-", "=", "+", "@" is a string cell, shown as written: no quote.
    for header, text in (
        ("活动名称", "=HYPERLINK 式羊毛党复盘"),
        ("做得好的", "- 企微社群分层触达，打开率 38%\n- 短信补发"),
        ("问题与原因", "+ 短信限流"),
        ("经验教训", "@运营 记得报备"),
    ):
        assert row[header].value == text
        assert row[header].data_type == "s"
    # The key metric, its attainment as a number shown with %, and the verdict.
    assert row["主要指标"].value == "转化率"
    assert row["主要指标达成率"].value == pytest.approx(80.0)
    assert row["主要指标达成率"].number_format == '0.0"%"'
    assert row["主要指标结果"].value == "未达成"
    assert row["开始日期"].number_format == 'yyyy"年"m"月"d"日"'
    assert row["预算（元）"].number_format == "#,##0"
    # Documents are readable text, one after another, not a JSON blob.
    documents = row["文档"].value
    assert documents.startswith("【文档】执行方案（方案）\n## 分层")
    assert "【文档】复盘汇报（汇报材料）\n第 1 页：目标与结果" in documents
    assert "[{" not in documents

    metrics = workbook["指标"]  # type: ignore[index]
    assert metrics.freeze_panes == "D2"
    assert metrics.auto_filter.ref == "A1:I5"
    rows = list(metrics.iter_rows(min_row=1, values_only=True))
    assert rows[0][-1] == "主要指标"
    assert [(r[3], r[-1]) for r in rows[1:]] == [
        ("成交额", None),
        ("转化率", "是"),
        ("获客成本", None),
        ("老客惊喜度", None),
    ]


def test_csv_carries_the_key_metric_and_keeps_the_formula_guard(
    client: FlaskClient, campaign_id: int
) -> None:
    text = client.get("/campaigns/export.csv").get_data(as_text=True)
    (row,) = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    assert row["活动名称"] == "'=HYPERLINK 式羊毛党复盘"  # Excel parses CSV formulas: guarded
    assert row["做得好的"].startswith("'- 企微")
    assert "【主要指标】转化率（%）：基线 8，目标 12，实际 9.6" in row["数据指标"]
    assert not row["数据指标"].startswith("[")  # the friendly form, not JSON
    assert (row["主要指标"], row["主要指标达成率"], row["主要指标结果"]) == (
        "转化率",
        "80%",
        "未达成",
    )
    assert row["文档"].startswith("【文档】执行方案（方案）")


def test_markdown_carries_the_key_metric(client: FlaskClient, campaign_id: int) -> None:
    text = client.get(f"/campaigns/{campaign_id}/export.md").get_data(as_text=True)
    front = text.split("\n---\n", 1)[0]
    assert (
        "- 指标名: 转化率\n  单位: '%'\n  基线: 8.0\n  目标: 12.0\n  实际: 9.6\n  主要指标: true"
        in front
    )
    assert front.count("主要指标:") == 1  # no "主要指标: false" on every other metric
    assert "# 主要指标：转化率 · 达成率 80% · 未达成" in front
    assert "目标类型: 召回" in front
    assert "状态: 已完成" in front


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "md"])
def test_the_key_metric_choice_reads_back(
    client: FlaskClient, campaign_id: int, fresh_app: object, tmp_path: Path, fmt: str
) -> None:
    url = f"/campaigns/{campaign_id}/export.md" if fmt == "md" else f"/campaigns/export.{fmt}"
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(client.get(url).data)
    other = fresh_app()  # type: ignore[operator]
    with other.app_context():
        from kb.transfer.imports import import_stream

        with path.open("rb") as handle:
            report = import_stream(handle, filename=path.name)
        assert [r.outcome for r in report.rows] == ["created"], report.rows
        assert not [w for w in report.warnings if "不认识的列" in w]
        campaign = services.get_campaign(report.rows[0].campaign_id or 0)
        assert [m.name for m in campaign.metrics if m.key] == ["转化率"]
        assert [d.title for d in campaign.documents] == ["执行方案", "复盘汇报"]
