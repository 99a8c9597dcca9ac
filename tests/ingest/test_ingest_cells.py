"""Cell values: formula neutralization both ways, numbers, dates, labels, nested text forms."""

from __future__ import annotations

from typing import Any

import pytest

from ingest import cells

TRICKY_TEXT = [
    '=HYPERLINK("http://x","点我")',
    "+86 138 0000 0000",
    "-20% 价格敏感用户流失",
    "@全体成员 今晚 8 点开团",
    "\t缩进",
    "\x00空字符",
    "'=已经转义过",
    "''",
    "'",
    "'普通引号开头",
    "正常文本",
    "",
]


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_neutralize_then_unneutralize_restores_the_text(text: str) -> None:
    assert cells.unneutralize(cells.neutralize(text)) == text


@pytest.mark.parametrize(
    "text", ["=1+1", "+1+cmd|x", "-2+3", "-x", "@SUM(A1)", "\tx", "\x00", "\r=x"]
)
def test_formulas_are_neutralized(text: str) -> None:
    assert cells.neutralize(text).startswith("'")


@pytest.mark.parametrize("number", ["-5", "-12.5", "+3", "1e-07", "-1.5e+20", "0"])
def test_plain_numbers_stay_numbers(number: str) -> None:
    assert cells.neutralize(number) == number
    assert cells.parse_number(cells.neutralize(number)) == float(number)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,200", 1200.0),
        ("12.5%", 12.5),
        ("1:4.2", 4.2),
        ("1：3", 3.0),
        ("¥3,500", 3500.0),
        ("'-3.5", -3.5),
        (" 42 ", 42.0),
        (7, 7.0),
        ("—", None),
        ("N/A", None),
        ("", None),
        (None, None),
        ("abc", "abc"),
    ],
)
def test_parse_number(raw: Any, expected: Any) -> None:
    assert cells.parse_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("35万", 350_000.0), ("1.2亿", 120_000_000.0), ("35w", 350_000.0), ("8千元", 8000.0)],
)
def test_budgets_read_chinese_magnitudes(raw: str, expected: float) -> None:
    assert cells.parse_number(raw, scaled=True) == expected
    assert cells.parse_number(raw) == raw  # only budgets are scaled


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-01", "2024-03-01"),
        ("2024/3/1", "2024-03-01"),
        ("2024.03.01", "2024-03-01"),
        ("2024年3月1日", "2024-03-01"),
        ("20240301", "2024-03-01"),
        ("2024-03-01 00:00:00", "2024-03-01"),
        (45352, "2024-03-01"),
        ("2024-02-30", "2024-02-30"),  # left for the schema to reject
        ("下周一", "下周一"),
    ],
)
def test_parse_date(raw: Any, expected: str) -> None:
    assert cells.parse_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("拉新", "acquisition"), ("GMV", "gmv"), ("Retention", "retention"), ("唤醒", "reactivation"),
     ("裂变", "referral"), ("积分运营", "积分运营")],
)  # fmt: skip
def test_goal_type_labels(raw: str, expected: str) -> None:
    assert cells.goal_type(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("已完成", "completed"),
        ("进行中", "running"),
        ("计划中", "planned"),
        ("已取消", "cancelled"),
    ],
)
def test_status_labels(raw: str, expected: str) -> None:
    assert cells.status(raw) == expected


def test_friendly_forms_read_what_people_write() -> None:
    assert cells.parse_list("宝妈；价格敏感用户, 大学生、白领") == [
        "宝妈",
        "价格敏感用户",
        "大学生",
        "白领",
    ]
    assert cells.parse_rewards("满减券：满 199 减 40（可叠加）; 积分") == [
        {"type": "满减券", "detail": "满 199 减 40", "stackable": True},
        {"type": "积分", "detail": "", "stackable": False},
    ]
    assert cells.parse_metrics(
        "成交额（万元）：基线 820，目标 1,000，实际 1130.5\nNPS：目标 40"
    ) == [
        {"name": "成交额", "unit": "万元", "baseline": 820.0, "target": 1000.0, "actual": 1130.5,
         "key": False},
        {"name": "NPS", "unit": "", "baseline": None, "target": 40.0, "actual": None, "key": False},
    ]  # fmt: skip
    assert cells.parse_metrics("【主要指标】GMV：目标 40")[0]["key"] is True
    assert cells.parse_hypotheses("- [已验证] 海报 A 点击率高 20%（依据：A/B 各 1 万人）") == [
        {"statement": "海报 A 点击率高 20%", "result": "validated", "evidence": "A/B 各 1 万人"}
    ]


NESTED_VALUES: list[tuple[str, list[Any]]] = [
    ("audience", ["宝妈", "25-35 岁女性, 一线城市"]),  # an item with a separator: JSON
    ("audience", ["-负数开头的人群", "新用户"]),
    ("rewards", [{"type": "满减券", "detail": "满 199 减 40", "stackable": True}]),
    ("rewards", [{"type": "券", "detail": "a：b（可叠加）", "stackable": False}]),
    ("metrics", [{"name": "ROI", "unit": "", "baseline": -1.5, "target": 1e-07, "actual": 3e20}]),
    ("metrics", [{"name": "A(x)", "unit": "万", "baseline": None, "target": None, "actual": None}]),
    ("hypotheses", [{"statement": "[1, 2]", "result": "inconclusive", "evidence": ""}]),
    ("hypotheses", [{"statement": "A 胜 B", "result": "refuted", "evidence": "（依据）"}]),
    ("documents", [{"title": "策略文档", "kind": "strategy", "body": "## 分层\n- 高"}]),
    ("documents", [{"title": "方案", "kind": "plan", "body": "正文"}]),
]


@pytest.mark.parametrize(("field", "value"), NESTED_VALUES)
def test_nested_fields_read_back_exactly(field: str, value: list[Any]) -> None:
    text = cells.encode(field, value)
    parsed = cells.NESTED[field][1](cells.unneutralize(cells.neutralize(text)))
    assert cells.normalize_nested(field, parsed) == value


def test_friendly_text_is_used_when_it_reads_back() -> None:
    assert cells.encode("audience", ["宝妈", "新用户"]) == "宝妈、新用户"
    assert cells.encode("audience", ["a, b"]).startswith("[")


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("1.2亿元", 12_000.0),  # was 1.2: only the leading digits were read
        ("8k", 0.8),
        ("3.5千", 0.35),
        ("１．５万", 1.5),  # full-width
        ("1:4.2", 4.2),
        ("1 234", 1_234.0),
        ("500 000", 500_000.0),
        ("1,234.5", 1_234.5),
        ("1130.5（目标未达成）", 1_130.5),  # a note after the amount
    ],
)
def test_a_metric_lines_values_are_read_whole_in_the_metrics_unit(typed: str, value: float) -> None:
    warnings: list[str] = []
    (metric,) = cells.parse_metrics(f"GMV（万元）：基线 {typed}，目标 100，实际 {typed}", warnings)
    assert (metric["baseline"], metric["target"], metric["actual"]) == (value, 100.0, value)
    assert warnings == []


@pytest.mark.parametrize("typed", ["12万5千", "50万-60万", "1.5M", "1'000'000"])
def test_a_metric_value_read_only_in_part_is_left_empty_and_named_once(typed: str) -> None:
    warnings: list[str] = []
    (metric,) = cells.parse_metrics(f"GMV（万元）：目标 100，实际 {typed}", warnings)
    assert metric["actual"] is None
    assert warnings == [f"GMV 实际值 “{typed}” 无法识别为数字，已留空"]
