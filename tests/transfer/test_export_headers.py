"""Every export names its columns by the fields' Chinese names (kb/vocab.py), and reads back.

CSV and Excel wrote short aliases (部门, 人群, 活动编号, 指标) beside the form's 负责部门, 目标人群,
外部编号, 数据指标; Markdown wrote the code names (title, external_id, name, baseline). The round
trips themselves are tests/transfer/test_round_trip.py; here: the names, and that the importer
reads each of them back to its field.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from ingest.columns import match_name
from ingest.writers import CSV_FIELDS, METRIC_SHEET_FIELDS, XLSX_MAIN_FIELDS
from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.vocab import FIELD_LABELS, ROW_FIELD_LABELS
from tests.factories import campaign_payload

# Columns an export adds for a reader (the key metric's result) and the metric sheet's own key.
DERIVED = {
    "key_metric": "主要指标",
    "key_attainment": "主要指标达成率",
    "key_verdict": "主要指标结果",
}
SHEET_ONLY = {"campaign_row": "活动行号"}


def _seed(app: Flask) -> int:
    with app.app_context():
        return services.create_campaign(validate_campaign(campaign_payload())).id


def _label(name: str) -> str:
    return DERIVED.get(name) or FIELD_LABELS[name]


def test_csv_headers_are_the_field_names(app: Flask, client: FlaskClient) -> None:
    _seed(app)
    text = client.get("/campaigns/export.csv").get_data(as_text=True)
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert header == [_label(name) for name in CSV_FIELDS]
    assert {"负责部门", "目标人群", "外部编号", "数据指标"} <= set(header)
    for name, text_header in zip(CSV_FIELDS, header, strict=True):
        assert match_name(text_header) == (None if name in DERIVED else name), text_header


def test_excel_headers_are_the_field_names(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    _seed(app)
    path = tmp_path / "export.xlsx"
    path.write_bytes(client.get("/campaigns/export.xlsx").data)
    workbook = load_workbook(path)
    main = [cell.value for cell in next(workbook["活动"].iter_rows(max_row=1))]
    assert main == [_label(name) for name in XLSX_MAIN_FIELDS]
    sheet = [cell.value for cell in next(workbook["指标"].iter_rows(max_row=1))]
    names = {**FIELD_LABELS, **ROW_FIELD_LABELS["metrics"], **SHEET_ONLY}
    assert sheet == [names[name] for name in METRIC_SHEET_FIELDS]
    assert sheet[3:8] == ["指标名", "单位", "基线", "目标", "实际"]
    for name, header in zip(METRIC_SHEET_FIELDS, sheet, strict=True):
        assert match_name(str(header), "metric_sheet") == name, header


def test_markdown_front_matter_keys_are_the_field_names(app: Flask, client: FlaskClient) -> None:
    campaign_id = _seed(app)
    text = client.get(f"/campaigns/{campaign_id}/export.md").get_data(as_text=True)
    front = yaml.safe_load(text.split("---\n")[1])
    assert set(front) <= set(FIELD_LABELS.values())
    assert {"活动名称", "外部编号", "负责部门", "目标人群", "数据指标", "验证的假设"} <= set(front)
    assert set(front["数据指标"][0]) <= set(ROW_FIELD_LABELS["metrics"].values())
    assert set(front["奖励与优惠"][0]) == set(ROW_FIELD_LABELS["rewards"].values())
    hypothesis = front["验证的假设"][0]
    assert set(hypothesis) == set(ROW_FIELD_LABELS["hypotheses"].values())
    assert hypothesis["结论"] == "已验证"  # the value by its name too, as 目标类型 and 状态
