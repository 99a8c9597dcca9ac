"""Column names in Chinese or English, metric columns, merged group headers, and the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.columns import (
    FIELD_COLUMNS,
    METRIC_SHEET_COLUMNS,
    Column,
    find_header,
    match_name,
    read_header,
)
from ingest.markdown import SECTION_HEADINGS, heading_field

DOC = (Path(__file__).resolve().parents[2] / "docs" / "importing.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("活动名称", "title"),
        ("活动名称/title", "title"),
        ("Title", "title"),
        ("  活动名称*  ", "title"),
        ("【必填】活动名称", "title"),
        ("目标类型 | Goal Type", "goal_type"),
        ("ＧＯＡＬ＿ＴＹＰＥ", "goal_type"),  # full-width
        ("预算（万元）", "budget_cny"),
        ("what went well", "went_well"),
        ("目标人群", "audience"),
        ("备注", None),
    ],
)
def test_headers_name_fields(header: str, field: str | None) -> None:
    assert match_name(header) == field


@pytest.mark.parametrize(
    ("header", "metric", "part", "unit"),
    [
        ("GMV_target", "GMV", "target", ""),
        ("GMV_actual", "GMV", "actual", ""),
        ("转化率目标", "转化率", "target", ""),
        ("转化率-实际", "转化率", "actual", ""),
        ("GMV（万元）_baseline", "GMV", "baseline", "万元"),
        ("ROI target", "ROI", "target", ""),
        ("复购率（%）", "复购率", "actual", "%"),  # a catalogued metric alone: its actual value
    ],
)
def test_metric_columns(header: str, metric: str, part: str, unit: str) -> None:
    (column,) = read_header([header])
    assert (column.metric, column.part, column.unit) == (metric, part, unit)


def test_budget_header_in_wan_scales_values() -> None:
    (column,) = read_header(["预算（万元）"])
    assert (column.field, column.scale) == ("budget_cny", 1e4)


def test_merged_group_headers_name_metrics_but_not_the_five_elements() -> None:
    above = ["基本信息", None, "五要素", None, None, "GMV（万元）", None, "转化率", None, None]
    header = ["活动名称", "行业", "目标", "部门", "人群", "目标", "实际", "基线", "目标", "实际"]
    columns = read_header(header, above)
    assert columns[2] == Column(2, "目标", field="goal")
    assert [(c.metric, c.part, c.unit) for c in columns[5:]] == [
        ("GMV", "target", "万元"),
        ("GMV", "actual", "万元"),
        ("转化率", "baseline", ""),
        ("转化率", "target", ""),
        ("转化率", "actual", ""),
    ]


def test_header_is_found_below_a_title_banner() -> None:
    rows = [
        ["2024 活动复盘汇总"],
        [],
        ["活动名称", "行业", "开始日期"],
        ["双十一", "电商", "2024-11-01"],
    ]
    assert find_header(rows) == 2
    assert find_header([["只有一列"], ["数据"]]) is None


@pytest.mark.parametrize(
    ("heading", "field"),
    [
        ("做得好的", "went_well"),
        ("三、做得好的地方（亮点）", "went_well"),
        ("What went well", "went_well"),
        ("4. 问题与原因分析", "problems"),
        ("经验沉淀", "lessons"),
        ("Lessons learned", "lessons"),
        ("下一步建议", "recommendations"),
        ("二、数据成效", "metrics"),
        ("附：执行排期", None),
    ],
)
def test_section_headings(heading: str, field: str | None) -> None:
    assert heading_field(heading) == field


@pytest.mark.parametrize(
    "alias",
    sorted(
        {
            a
            for aliases in (*FIELD_COLUMNS.values(), *METRIC_SHEET_COLUMNS.values())
            for a in aliases
        }
        | {a for aliases in SECTION_HEADINGS.values() for a in aliases}
    ),
)
def test_docs_list_every_accepted_name(alias: str) -> None:
    assert alias in DOC
