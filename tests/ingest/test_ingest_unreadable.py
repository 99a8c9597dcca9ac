"""Values an importer cannot read as numbers are left empty with a warning each, never dropped
unseen, and the rest of the row is kept (issue 16: "实际 abc" vanished without a word)."""

from __future__ import annotations

import io

from ingest import cells
from ingest.markdown import parse_markdown
from ingest.readers import open_reader


def test_a_metric_line_names_the_value_it_left_empty() -> None:
    warnings: list[str] = []
    metrics = cells.parse_metrics("GMV（万元）：目标 1000，实际 abc", warnings)
    assert metrics == [
        {"name": "GMV", "unit": "万元", "baseline": None, "target": 1000.0, "actual": None,
         "key": False}
    ]  # fmt: skip
    assert warnings == ["GMV 实际值 “abc” 无法识别为数字，已留空"]


def test_a_blank_word_is_no_warning() -> None:
    warnings: list[str] = []
    cells.parse_metrics("GMV：目标 1000，实际 -", warnings)
    cells.parse_metrics("GMV：目标 1000，实际 暂无", warnings)
    assert warnings == []


def test_without_a_collector_text_passes_on_for_the_schema() -> None:
    assert cells.read_number("abc", "预算", None) == "abc"
    assert (
        cells.normalize_nested("metrics", [{"name": "GMV", "actual": "abc"}])[0]["actual"] == "abc"
    )


CSV = (
    "活动名称,行业,目标类型,开始日期,结束日期,预算（万元）,GMV_目标,GMV_实际,ROI_实际\n"
    "夜宵节,本地生活,GMV,2024-07-15,2024-08-15,12,2800,abc,1:2.4\n"
    "早餐节,本地生活,GMV,2024-09-01,2024-09-10,十二,100,90,n/a\n"
)


def test_a_sheet_row_keeps_its_other_values_and_says_which_were_left_empty() -> None:
    reader = open_reader("csv", io.BytesIO(CSV.encode()))
    first, second = list(reader.rows())
    assert first.data is not None
    assert second.data is not None
    assert first.data["budget_cny"] == 120_000
    assert first.data["metrics"] == [
        {"name": "GMV", "unit": "", "baseline": None, "target": 2800.0, "actual": None},
        {"name": "ROI", "unit": "", "baseline": None, "target": None, "actual": 2.4},
    ]
    assert first.warnings == ["第 2 行 GMV 实际值 “abc” 无法识别为数字，已留空"]
    assert "budget_cny" not in second.data
    assert second.data["title"] == "早餐节"
    assert second.warnings == ["第 3 行 预算（万元） “十二” 无法识别为数字，已留空"]
    # The file's warnings (kept in the import's report) name them too.
    assert reader.warnings == [*first.warnings, *second.warnings]


def test_a_metrics_sheet_row_names_its_unreadable_value() -> None:
    main = "活动编号,活动名称,行业,目标类型,开始日期,结束日期\nx1,夜宵节,本地生活,GMV,2024-07-15,2024-08-15\n"
    metrics = "活动编号,指标,目标,实际\nx1,GMV,2800,约三千\n"
    reader = open_reader("csv", io.BytesIO(main.encode()), metrics=io.BytesIO(metrics.encode()))
    (row,) = list(reader.rows())
    assert row.data is not None
    assert row.data["metrics"][0]["target"] == 2800.0
    assert row.data["metrics"][0]["actual"] is None
    assert "指标文件第 2 行 GMV 实际值 “约三千” 无法识别为数字，已留空" in reader.warnings


def test_a_markdown_metric_table_names_its_unreadable_value() -> None:
    parsed = parse_markdown(
        "# 夜宵节\n\n## 数据成效\n\n| 指标 | 目标 | 实际 |\n| --- | --- | --- |\n| GMV | 2800 | 待统计 |\n"
    )
    assert parsed.data["metrics"][0]["target"] == 2800.0
    assert parsed.data["metrics"][0]["actual"] is None
    assert "GMV 实际值 “待统计” 无法识别为数字，已留空" in parsed.warnings
