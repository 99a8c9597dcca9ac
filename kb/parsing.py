"""Numbers and dates as a Chinese team types them: 50万, 1.2亿, 3,500, 35万元, 3.5%, 2025年12月1日.

The one reader of typed numbers and dates: the campaign and draft forms, the search and list
filters, the JSON API (through the schemas' validators) and the importers (``ingest/cells.py``
adds only what is particular to spreadsheet cells) all use it. A leaf: from kb it imports only
the messages of kb.validation.

Two layers: ``parse_number`` / ``parse_date`` return the value, or the text unchanged when it is
not one (an importer reports it later, with the rest of the row); ``number_input`` /
``date_input`` are the schemas' validators, which refuse such text with a Chinese message that
says what was expected.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic_core import PydanticCustomError

from kb.validation import DATE_MESSAGE, NUMBER_MESSAGE

# Cells and boxes that mean "unknown": blank, a dash, 无.
BLANKS = frozenset({"", "-", "—", "--", "/", "无", "n/a", "na", "none", "null", "暂无", "未知"})
# Thousands separators, spaces and currency marks carry no value: "¥3,500 元" is 3500.
_NUMBER_NOISE = re.compile(r"[,，\s¥￥$]|元$|人民币")
_RATIO = re.compile(r"^1\s*[:：]\s*([-+]?\d+(?:\.\d+)?)$")
_SCALED = re.compile(r"^([-+]?\d+(?:\.\d+)?)\s*(万元|万|w|亿元|亿|千元|千|k)$", re.IGNORECASE)
SCALES = {
    "万元": 1e4,
    "万": 1e4,
    "w": 1e4,
    "亿元": 1e8,
    "亿": 1e8,
    "千元": 1e3,
    "千": 1e3,
    "k": 1e3,
}


def clean(text: str) -> str:
    """Return text with full-width digits and signs (２０２５，５０％) as their ASCII forms."""
    return unicodedata.normalize("NFKC", text).strip()


def parse_number(value: Any, *, scaled: bool = True) -> Any:
    """Return a float for "1,200" "12.5%" "1:4.2" "35万元" "1.2亿", None for a blank.

    ``scaled=False`` reads 万/亿 as no number (a spreadsheet metric column whose unit is in its
    header). Text that is not a number is returned unchanged, for the caller to report.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    text = clean(str(value))
    if text.lower() in BLANKS:
        return None
    cleaned = _NUMBER_NOISE.sub("", text).rstrip("%")
    if ratio := _RATIO.match(cleaned):
        return float(ratio[1])
    if scaled and (match := _SCALED.match(cleaned)):
        return float(match[1]) * SCALES[match[2].lower()]
    try:
        number = float(cleaned)
    except ValueError:
        return str(value).strip()
    # "nan" and "inf" are no amounts a person types: leave them for the caller to refuse.
    return number if math.isfinite(number) else str(value).strip()


# ---- units -------------------------------------------------------------------------------
# A unit folds to a dimension and a scale to the base unit of that dimension: 元 for money, one
# item for counts (人, 人次, 单…), % for percentages, 倍 for ratios (ROI 3.5 = 3.5 倍 = 1:3.5).
Dimension = Literal["money", "percent", "ratio", "count", "other", "unknown"]
UNIT_SCALES = {"万": 1e4, "亿": 1e8, "千": 1e3, "百万": 1e6, "k": 1e3, "w": 1e4}
_YUAN = frozenset({"元", "rmb", "cny", "人民币", "¥", "￥", "块", "人民币元"})
# Money without an exchange rate: a dimension for the metric catalog, no amount in 元.
_FOREIGN_MONEY = frozenset({"美元", "usd", "$"})
_RATIO_UNITS = frozenset({"倍", ":1", "1:", "x", "×", "比"})
_PERCENT_UNITS = {"%": 1.0, "pct": 1.0, "百分比": 1.0, "个百分点": 1.0, "pp": 1.0, "‰": 0.1}
_COUNT_UNITS = frozenset(
    {"人", "人次", "次", "单", "笔", "个", "件", "套", "张", "支", "篇", "位", "户", "名", "台"}
)
# Traditional forms of the characters units are written with (the metric catalog folds whole
# texts first and never needs them; an index or an importer may pass a unit as typed).
_UNIT_T2S = str.maketrans("萬億單個張筆戶臺塊圓", "万亿单个张笔户台块元")
_DIGIT = re.compile(r"\d")
_PER = re.compile(r"/|每")


@dataclass(frozen=True, slots=True)
class Unit:
    """What a unit measures and the factor from a value in it to the dimension's base unit."""

    dimension: Dimension
    scale: float
    foreign: bool = False  # money in a currency other than 元


def read_unit(unit: str) -> Unit:
    """Read a unit: 万元 is money x10 000, 万人 a count x10 000, % a percentage, 倍 a ratio.

    A bare 万 or 亿 is a scale of something unnamed ("unknown"), a blank unit is unknown at
    scale 1, a word this reader does not name (分, 天, 箱) is "other" with its prefix read
    (万箱: x10 000).
    """
    folded = _fold_unit(unit)
    if not folded:
        return Unit("unknown", 1.0)
    if folded in _PERCENT_UNITS:
        return Unit("percent", _PERCENT_UNITS[folded])
    if folded in _RATIO_UNITS:
        return Unit("ratio", 1.0)
    if folded in UNIT_SCALES:
        return Unit("unknown", UNIT_SCALES[folded])
    for prefix in sorted(UNIT_SCALES, key=len, reverse=True):
        rest = folded[len(prefix) :]
        # A Latin prefix only before a unit it scales: "kg" and "week" hold no 千 or 万.
        named = rest in _YUAN or rest in _FOREIGN_MONEY or rest in _COUNT_UNITS
        if rest and folded.startswith(prefix) and (not prefix.isascii() or named):
            return _named(rest, UNIT_SCALES[prefix])
    return _named(folded, 1.0)


def _fold_unit(unit: str) -> str:
    return re.sub(r"\s+", "", clean(unit or "").lower().translate(_UNIT_T2S))


def _named(word: str, scale: float) -> Unit:
    if word in _YUAN or word in _FOREIGN_MONEY:
        return Unit("money", scale, foreign=word in _FOREIGN_MONEY)
    if word in _COUNT_UNITS:
        return Unit("count", scale)
    return Unit("other", scale)


def unit_words() -> tuple[str, ...]:
    """Return every unit this reader names in 元 or a base unit, scaled forms too, longest first.

    万元, 万人, 亿, %, 倍, 人次…: what may follow a number typed in a search box. Foreign money
    (no rate to 元) and the "other" words (分, 天) are left out: they are no unit a filter reads.
    """
    named = (*_YUAN, *_COUNT_UNITS)
    # ":1" and "1:" are read with the number ("1:4.2"); 比 after a number is "than" in a sentence.
    ratios = _RATIO_UNITS - {":1", "1:", "比"}
    words = {*named, *_PERCENT_UNITS, *ratios, *UNIT_SCALES}
    for prefix in UNIT_SCALES:
        # As read_unit reads them: a Latin prefix only before a unit it scales (k元, not kg).
        words.update(prefix + word for word in named)
    return tuple(sorted(words, key=lambda word: (-len(word), word)))


def unit_scale(unit: str) -> float:
    """Return the scale a unit already holds: 1e4 for 万元 and 万人, 1 for 元, %, 人."""
    return read_unit(unit).scale


def base_scale(unit: str) -> float | None:
    """Return the factor that brings a value in ``unit`` to its base unit; None if none does.

    万元 → 10 000 (to 元), 1.2 in 亿元 → 1.2e8 元, 万单 → 10 000 (单), % → 1, ‰ → 0.1 (to %),
    倍 / "" / :1 → 1, 元/人 → 1 (a price per person stays a price). A word this reader does not
    name (分, 天) is its own base unit, its prefix read. None for a unit no base fits: a foreign
    currency (no exchange rate), a figure inside the unit (每100人), a scaled denominator
    (次/万人, 元/千次).
    """
    folded = _fold_unit(unit)
    if not folded:
        return 1.0
    if _DIGIT.search(folded) and folded not in _RATIO_UNITS:
        return None
    numerator, *denominator = _PER.split(folded, maxsplit=1)
    if denominator:
        below = read_unit(denominator[0])
        if not denominator[0] or below.scale != 1.0 or below.dimension == "percent":
            return None
    reading = read_unit(numerator)
    return None if reading.foreign else reading.scale


def parse_in_unit(value: Any, unit: str) -> Any:
    """Read a metric value typed in its unit: "1.2亿" in 万元 is 12000, "50万" in 元 is 500000."""
    number = parse_number(value)
    if not isinstance(number, float) or not isinstance(value, str):
        return number
    scale = unit_scale(unit)
    if scale == 1.0 or not _SCALED.match(_NUMBER_NOISE.sub("", clean(value))):
        return number
    return number / scale


_NUMBER_AND_UNIT = re.compile(r"^([-+]?\d+(?:\.\d+)?)\s*(\D.*)$")


def parse_to_base(value: Any) -> Any:
    """Read a number with an optional unit into the unit's base: 50万元 → 500000, 3万人 → 30000.

    The reading a metric's stored actual and target are indexed in (``base_scale``): money in
    元, counts in single items, % and 倍 as they are (3.5%, 4.2倍, 1:4.2). A unit no base fits
    (50美元, 3次/万人) returns the text unchanged, for the caller to refuse.
    """
    number = parse_number(value)
    if not isinstance(number, str):
        return number
    match = _NUMBER_AND_UNIT.match(clean(number))
    if match is None or (scale := base_scale(match[2])) is None:
        return number
    head = parse_number(match[1])
    return head * scale if isinstance(head, float) else number


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_MONTH_DAY = re.compile(r"^(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


def parse_date(value: Any) -> Any:
    """Return an ISO date for 2025-12-01, 2025/12/1, 2025.12.1, 2025年12月1日, 20251201 or a date.

    Anything else (12月1日 without its year, 2025-02-30) is returned as it was, for the caller
    to report (``date_input`` says what is wrong).
    """
    if isinstance(value, date):
        return value.isoformat()[:10]
    if not isinstance(value, str):
        return value
    text = clean(value)
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
        except ValueError:
            return value.strip()
    return value.strip()


def number_input(value: Any) -> Any:
    """Validate a typed number for a schema: 50万 → 500000.0; refuse text that is none.

    A JSON true or false is refused too: Python counts it as 1 or 0, and a client's misplaced
    flag would become a target of 1 that the campaign "missed".
    """
    if isinstance(value, bool):
        raise PydanticCustomError("number_parsing", NUMBER_MESSAGE)
    number = parse_number(value)
    if isinstance(number, str):
        raise PydanticCustomError("number_parsing", NUMBER_MESSAGE)
    return number


def date_input(value: Any) -> Any:
    """Validate a typed date for a schema; say what is missing or impossible, in Chinese."""
    if value is None or value == "":
        return None
    parsed = parse_date(value)
    if not isinstance(parsed, str) or _looks_iso(parsed):
        return parsed
    text = clean(parsed)
    if month_day := _MONTH_DAY.match(text):
        # The example repeats what was typed with a year in front, so the fix is plain to see.
        example = f"{date.today().year}年{int(month_day[1])}月{int(month_day[2])}日"
        raise PydanticCustomError("date_no_year", "请写上年份，如 {example}", {"example": example})
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if match:
        raise PydanticCustomError(
            "date_impossible",
            "没有这一天：{year}年{month}月{day}日",
            {"year": int(match[1]), "month": int(match[2]), "day": int(match[3])},
        )
    raise PydanticCustomError("date_parsing", DATE_MESSAGE)


def _looks_iso(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def format_input(value: float | None, *, amount: bool = False) -> str:
    """Write a stored number back into a form box so that reading it gives exactly the same value.

    An ``amount`` (a budget in 元) reads in 万 or 亿 when that is exact to two decimals
    (500000 → 50万, 135000000 → 1.35亿); anything else is written in full, never rounded.
    """
    if value is None:
        return ""
    if amount:
        for scale, word in ((1e8, "亿"), (1e4, "万")):
            mantissa = round(value / scale, 2)
            if abs(value) >= scale and mantissa * scale == value:
                return f"{_plain(mantissa)}{word}"
    return _plain(value)


def _plain(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
