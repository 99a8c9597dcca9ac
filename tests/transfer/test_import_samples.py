"""Every sample file in tests/data imports: what is created, what is rejected, where and why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from kb.campaigns.serialize import campaign_to_dict
from kb.extensions import db
from kb.models import Campaign
from kb.transfer.imports import ImportReport, import_stream

Sample = Callable[[str], Path]


def run(path: Path, *, dry_run: bool = False, metrics: Path | None = None) -> ImportReport:
    with path.open("rb") as source:
        if metrics is None:
            return import_stream(source, filename=path.name, dry_run=dry_run)
        with metrics.open("rb") as extra:
            return import_stream(source, filename=path.name, metrics=extra, dry_run=dry_run)


def rejected(report: ImportReport) -> dict[int, dict[str, str]]:
    return {row.row: row.fields for row in report.rejected}


def stored(external_id: str) -> dict[str, Any]:
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.external_id == external_id))
    assert campaign is not None, external_id
    return campaign_to_dict(campaign)


EXPECTED = {
    # file: (created, rejected rows)
    "campaigns.json": (3, set()),
    "campaigns.jsonl": (3, {4, 5}),
    "campaigns_gbk.csv": (3, {5}),
    "campaigns_bom.csv": (2, {7}),
    "retro_merged_header.xlsx": (2, {7}),
    "retro_618.md": (1, set()),
    "retro_en.md": (1, set()),
    "retro_deck.pptx": (1, set()),
    "retro_double11.docx": (0, {1}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_imports(app: Flask, sample: Sample, name: str) -> None:
    created, bad_rows = EXPECTED[name]
    with app.app_context():
        preview = run(sample(name), dry_run=True)
        assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 0
        report = run(sample(name))
        again = run(sample(name))
    for result in (preview, report):
        assert result.counts["created"] == created, result.rows
        assert set(rejected(result)) == bad_rows
    assert again.counts["unchanged"] == created
    assert again.counts["created"] == again.counts["updated"] == 0


def test_json_export_of_another_instance(app: Flask, sample: Sample) -> None:
    with app.app_context():
        run(sample("campaigns.json"))
        live = stored("hz-2024-018")
        no_id = db.session.scalar(sa.select(Campaign).where(Campaign.external_id.is_(None)))
        assert no_id is not None
        assert no_id.title == "校园开学季：学生认证领 20 元无门槛券"
    assert live["id"] != 901  # ids of the other instance are not ours
    assert [m["name"] for m in live["metrics"]] == ["GMV", "退货率"]
    assert live["metrics"][1]["hit"] is False


def test_jsonl_bad_lines_are_reported_with_their_line_and_reason(
    app: Flask, sample: Sample
) -> None:
    with app.app_context():
        report = run(sample("campaigns.jsonl"))
    errors = rejected(report)
    assert errors[4][""].startswith("不是合法的 JSON")
    assert errors[5]["goal_type"].startswith("取值须为以下之一")
    assert errors[5]["end_date"] == "结束日期不能早于开始日期"


def test_gbk_csv_with_bilingual_headers_and_labels(app: Flask, sample: Sample) -> None:
    with app.app_context():
        report = run(sample("campaigns_gbk.csv"))
        campaign = db.session.scalar(
            sa.select(Campaign).where(Campaign.title == "宝贝优选 开学季纸尿裤囤货节")
        )
        assert campaign is not None
        data = campaign_to_dict(campaign)
    assert report.warnings == ["已忽略不认识的列：负责人（见列名对照表）"]
    assert rejected(report)[5] == {
        "goal_type": "取值须为以下之一：拉新、促活、留存、召回、转化、GMV、品牌、裂变"
    }
    assert (data["goal_type"], data["status"], data["budget_cny"]) == ("gmv", "completed", 1.2e6)
    assert (data["start_date"], data["end_date"]) == ("2024-08-25", "2024-09-10")
    assert data["audience"] == ["宝妈", "价格敏感用户"]
    assert data["channels"] == ["小程序", "企业微信社群"]
    assert [(m["name"], m["unit"], m["target"], m["actual"]) for m in data["metrics"]] == [
        ("GMV", "", 1500, 1620),
        ("转化率", "%", 4.5, 5.1),
    ]


def test_bom_csv_with_banner_extra_columns_blank_rows_and_a_wrong_date(
    app: Flask, sample: Sample
) -> None:
    with app.app_context():
        report = run(sample("campaigns_bom.csv"))
        data = stored("wm-2024-101")
    assert [row.row for row in report.rows] == [4, 6, 7]  # the rows as the sheet numbers them
    assert rejected(report) == {7: {"start_date": "没有这一天：2024年2月30日"}}
    assert report.warnings == ["已忽略不认识的列：备注、导出时间（见列名对照表）"]
    assert data["budget_cny"] == 1_500_000
    assert data["rewards"] == [
        {"type": "满减券", "detail": "满 40 减 12", "stackable": True},
        {"type": "红包", "detail": "会员红包 5 元", "stackable": True},
    ]
    assert [(m["name"], m["target"], m["actual"]) for m in data["metrics"]] == [
        ("GMV", 2800, 3150),
        ("ROI", 3, 2.4),
    ]
    assert data["problems"].startswith("=HYPERLINK")  # text, stored as given


def test_metrics_from_a_second_file(app: Flask, sample: Sample) -> None:
    with app.app_context():
        report = run(sample("campaigns_main.csv"), metrics=sample("campaigns_main_metrics.csv"))
        data = stored("edu-2024-07")
    assert [(m["name"], m["baseline"], m["target"], m["actual"]) for m in data["metrics"]] == [
        ("完课率", 38, 55, 61),
        ("转化率", 8, 10, 6),
    ]
    # The K值 row names the campaign by title; the unreadable number is left empty (the row is
    # kept) and named, with its row in the file.
    assert rejected(report) == {}
    assert report.warnings == [
        "指标文件第 5 行 获客成本 实际值 “abc” 无法识别为数字，已留空",
        "指标文件第 6 行对应不到任何活动，已忽略",
    ]


def test_workbook_with_merged_headers_and_a_metrics_sheet(app: Flask, sample: Sample) -> None:
    with app.app_context():
        report = run(sample("retro_merged_header.xlsx"))
        spring, koc = stored("my-2024-01"), stored("my-2024-02")
    assert [row.row for row in report.rows] == [4, 6, 7]
    assert rejected(report) == {7: {"start_date": "没有这一天：2024年6月31日"}}
    assert "“指标”表第 5 行对应不到任何活动，已忽略" in report.warnings
    assert (spring["goal_type"], spring["goal"], spring["start_date"]) == (
        "referral",
        "拼团带新 2 万人",
        "2024-03-01",
    )
    assert [
        (m["name"], m["unit"], m["baseline"], m["target"], m["actual"]) for m in spring["metrics"]
    ] == [
        ("GMV", "万元", None, 800, 910),
        ("转化率", "%", 3.2, 4, 4.6),
        ("新增用户数", "人", None, 20000, 23400),
    ]
    assert koc["start_date"] == "2024-05-01"  # typed as text "2024.05.01"
    assert [m["name"] for m in koc["metrics"]] == ["互动率", "曝光量"]  # keyed by title


def test_markdown_front_matter_and_sections(app: Flask, sample: Sample) -> None:
    with app.app_context():
        report = run(sample("retro_618.md"))
        data = stored("sx-2024-618")
    assert report.warnings == ["front matter 中不认识的字段“作者”已忽略"]
    assert (data["goal_type"], data["status"], data["budget_cny"]) == ("gmv", "completed", 3e6)
    assert data["end_date"] == "2024-06-18"
    assert data["tags"] == ["618", "预售", "次日达"]
    assert data["rewards"][0] == {"type": "满减券", "detail": "满 99 减 15", "stackable": True}
    assert data["summary"].startswith("> 本文为复盘会纪要整理版。")
    assert data["went_well"].startswith("- 预售锁单后按量备货")
    assert data["problems"].startswith("- 次日达在 6.17–6.18 爆单")
    assert data["lessons"].startswith("预售 + 按量备货")
    assert data["recommendations"].startswith("1. 大促前")
    assert [(m["name"], m["baseline"], m["actual"]) for m in data["metrics"]] == [
        ("GMV", 3200, 4380),
        ("损耗率", 6.5, 3.8),
        ("次日达履约率", 91, 95.2),
    ]
    assert [h["result"] for h in data["hypotheses"]] == ["validated", "refuted"]
    assert data["documents"][0]["title"] == "其他章节"
    assert "执行排期" in data["documents"][0]["body"]


def test_english_markdown(app: Flask, sample: Sample) -> None:
    with app.app_context():
        run(sample("retro_en.md"))
        campaign = db.session.scalar(sa.select(Campaign))
        assert campaign is not None
        data = campaign_to_dict(campaign)
    assert data["summary"].startswith("Invite a friend")
    assert data["went_well"].startswith("- Parents in the same class")
    assert data["lessons"] == "Referral works best inside existing class groups."
    assert data["recommendations"].startswith("Reserve 30%")
    assert data["audience"] == ["宝妈", "大学生"]


def test_word_retro_fills_what_it_says_and_asks_for_the_rest(app: Flask, sample: Sample) -> None:
    with app.app_context():
        report = run(sample("retro_double11.docx"), dry_run=True)
    (row,) = report.rows
    assert row.title == "2024 双十一 沉睡会员召回 复盘报告"
    assert row.fields == {"industry": "必填"}  # the user completes it in the form


def test_powerpoint_deck(app: Flask, sample: Sample) -> None:
    with app.app_context():
        run(sample("retro_deck.pptx"))
        campaign = db.session.scalar(sa.select(Campaign))
        assert campaign is not None
        data = campaign_to_dict(campaign)
    assert data["title"] == "宝贝优选 六一 社群裂变 任务宝复盘"
    assert (data["industry"], data["goal_type"], data["department"]) == (
        "母婴",
        "referral",
        "社群运营组",
    )
    assert (data["start_date"], data["end_date"]) == ("2024-05-20", "2024-06-01")  # cover line
    assert data["audience"] == ["宝妈", "孕期家庭"]
    assert [(m["name"], m["target"], m["actual"]) for m in data["metrics"]] == [
        ("K值", 1.5, 2.1),
        ("新增用户数", 20000, 31800),
        ("7日留存", 35, 28),
    ]
    assert data["went_well"].startswith("- 任务宝海报 A/B")
    assert data["lessons"] == "裂变奖励要绑定首单，而不是绑定注册"
    (document,) = data["documents"]
    assert document["kind"] == "deck"
    # Reading order: the cover, then each slide's title, body and notes.
    body = document["body"]
    assert (
        body.index("活动信息")
        < body.index("数据成效")
        < body.index("做得好的")
        < body.index("复盘会")
    )
