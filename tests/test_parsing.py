"""Numbers and dates as a Chinese team types them: one reader for forms, filters, API, imports."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic_core import PydanticCustomError

from kb import parsing


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("50万", 500_000.0),
        ("1.2亿", 120_000_000.0),
        ("3,500", 3500.0),
        ("35万元", 350_000.0),
        ("¥3,500 元", 3500.0),
        ("3.5%", 3.5),
        ("５０万", 500_000.0),  # full-width digits
        ("1:4.2", 4.2),
        ("8k", 8000.0),
        ("-12.5", -12.5),
        ("", None),
        ("无", None),
        (12, 12.0),
    ],
)
def test_numbers_as_typed(typed: object, expected: float | None) -> None:
    assert parsing.parse_number(typed) == expected


@pytest.mark.parametrize("typed", ["abc", "五十万", "nan", "inf", "1.2.3"])
def test_text_that_is_no_number_is_refused_in_chinese(typed: str) -> None:
    assert parsing.parse_number(typed) == typed
    with pytest.raises(PydanticCustomError) as caught:
        parsing.number_input(typed)
    assert "请输入数字" in str(caught.value)
    assert "50万" in str(caught.value)


def test_scaled_values_read_in_the_metrics_unit() -> None:
    assert parsing.parse_in_unit("1.2亿", "万元") == 12_000.0
    assert parsing.parse_in_unit("50万", "万元") == 50.0
    assert parsing.parse_in_unit("50万", "元") == 500_000.0
    assert parsing.parse_in_unit("1130.5", "万元") == 1130.5  # a plain number is in the unit
    assert parsing.parse_in_unit("3.5%", "%") == 3.5


@pytest.mark.parametrize(
    "typed",
    ["2025/12/1", "2025-12-01", "2025年12月1日", "2025.12.1", "20251201", "２０２５年１２月１日"],
)
def test_dates_as_typed(typed: str) -> None:
    assert parsing.date_input(typed) == "2025-12-01"


@pytest.mark.parametrize(
    ("typed", "kind", "words"),
    [
        ("12月1日", "date_no_year", f"请写上年份，如 {date.today().year}年12月1日"),
        ("12/1", "date_no_year", "请写上年份"),
        ("2025-02-30", "date_impossible", "没有这一天：2025年2月30日"),
        ("下周一", "date_parsing", "日期格式应如 2025-12-01、2025/12/1 或 2025年12月1日"),
    ],
)
def test_a_date_without_its_year_or_day_is_refused_in_chinese(
    typed: str, kind: str, words: str
) -> None:
    with pytest.raises(PydanticCustomError) as caught:
        parsing.date_input(typed)
    assert caught.value.type == kind
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("value", "amount", "shown"),
    [
        (500_000.0, True, "50万"),
        (135_000_000.0, True, "1.35亿"),
        (1_234_567.0, True, "1234567"),  # not exact in 万 to two decimals: written in full
        (0.123456, False, "0.123456"),
        (None, False, ""),
    ],
)
def test_a_stored_number_goes_back_into_a_box_exactly(
    value: float | None, amount: bool, shown: str
) -> None:
    assert parsing.format_input(value, amount=amount) == shown
    if value is not None:
        assert parsing.parse_number(shown) == value
