"""Markdown to safe HTML, and the number and date formats a Chinese ops team writes."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import markdown
import nh3
from markupsafe import Markup

# Python-Markdown passes raw HTML through; nh3 then keeps only these tags and attributes.
_TAGS = {
    "p", "br", "hr", "strong", "em", "b", "i", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody",
    "tr", "th", "td", "sup", "sub",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def render_markdown(text: str) -> Markup:
    """Render Markdown and sanitize it: no script, event handler or javascript: link survives."""
    html = markdown.markdown(text or "", extensions=["tables", "sane_lists", "fenced_code"])
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener nofollow noreferrer",
    )
    return Markup(clean)  # noqa: S704  # sanitized by nh3 just above


def conflict_message(noun: str, current_version: int) -> str:
    """Tell an editor their save lost a race, and that saving again overwrites the other edit."""
    return (
        f"保存前该{noun}已被他人修改（当前为第 {current_version} 版），你的修改尚未保存。"
        "请核对后再次保存，将覆盖对方的修改。"
    )


def format_date(value: date | datetime | None) -> str:
    """Format a date as 2024年11月11日."""
    if value is None:
        return "—"
    return f"{value.year}年{value.month}月{value.day}日"


def format_datetime(value: datetime | None, zone: str = "Asia/Shanghai") -> str:
    """Format a moment in the team's time zone: 2024年11月11日 09:05."""
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(zone)) if value.tzinfo else value
    return f"{format_date(local)} {local:%H:%M}"


# Unit prefixes that already scale the number (a metric "in 万元"): folded into the amount first.
_UNIT_SCALES = (("千万", 1e7), ("百万", 1e6), ("亿", 1e8), ("億", 1e8), ("万", 1e4), ("萬", 1e4))
# Units a number is never rescaled in: rates, ratios, scores.
_PERCENT_UNITS = frozenset({"%", "％", "‰", "pp", "个百分点", "百分点"})
_UNSCALED_UNITS = frozenset({"倍", "x", "分", "星", "天", "日"})


def format_amount(value: float) -> str:
    """Write a number as a Chinese team does: 8,000; 12.5 万; 1260 万; 1.35 亿 (never "x.0").

    At most four significant digits once in 万 or 亿: 2 decimals below 100, 1 below 1000, none above.
    """
    for limit, word in ((1e8, "亿"), (1e4, "万")):
        if abs(value) >= limit:
            mantissa = value / limit
            text = _trim(mantissa, 2 if abs(mantissa) < 100 else 1 if abs(mantissa) < 1000 else 0)
            if word == "万" and abs(float(text)) >= 10_000:  # 9999.6 万 rounds up into 亿
                return format_amount(1e8 if value > 0 else -1e8)
            return f"{text} {word}"
    if value == int(value):
        return f"{int(value):,}"
    return _trim(value, 2 if abs(value) >= 1 else 4)


def format_quantity(value: float | None, unit: str | None = None) -> str:
    """Format a value with its unit: 1260 万元 (12,600,000 元 or 1260 万元), 1.35 亿元, 16.8%, 3.5 倍."""
    if value is None:
        return "—"
    unit = (unit or "").strip()
    if unit in _PERCENT_UNITS:
        return (
            f"{_trim(value, 1)}{unit}" if unit in ("%", "％", "‰") else f"{_trim(value, 1)} {unit}"
        )
    if unit in _UNSCALED_UNITS:
        return f"{format_amount(value) if abs(value) < 1e4 else f'{value:,.0f}'} {unit}"
    for prefix, scale in _UNIT_SCALES:
        if unit.startswith(prefix):
            value, unit = value * scale, unit[len(prefix) :]
            break
    text = format_amount(value)
    if not unit:
        return text
    # "1260 万元", "8,000 元", "3 人": the 万/亿 word and the unit form one word.
    return f"{text}{unit}" if text[-1] in "万亿" else f"{text} {unit}"


def format_cny(value: float | None) -> str:
    """Format yuan the way budgets are written: 8,000 元, 12.5 万元, 1.35 亿元."""
    return format_quantity(value, "元")


def format_number(value: float | None, unit: str | None = None) -> str:
    """Format a metric value, in its unit when given: 12.5, 1260 万, 3380 万元, 16.8%."""
    if value is None:
        return "—"
    return format_quantity(value, unit)


def format_pct(value: float | None, *, signed: bool = False) -> str:
    """Format a percentage with at most one decimal: 87.5%, 87%, +12%."""
    if value is None:
        return "—"
    text = _trim(abs(value), 1)
    if text == "0":
        return "0%"
    sign = ("+" if value > 0 else "−") if signed else ("-" if value < 0 else "")
    return f"{sign}{text}%"


def format_change(lift_pct: float | None, direction: str | None = None) -> str:
    """Say how a metric moved from its baseline in words, not a sign that flips with direction.

    ``lift_pct`` is already oriented (positive = better): a lower-is-better metric that rose
    18 % → 31.2 % has lift −73.3 and reads "变差 73.3%"; a higher-is-better one "提升"/"下降".
    """
    if lift_pct is None:
        return "—"
    size = format_pct(abs(lift_pct))
    if size == "0%":
        return "持平"
    if direction == "lower":
        return f"{'改善' if lift_pct > 0 else '变差'} {size}"
    return f"{'提升' if lift_pct > 0 else '下降'} {size}"


def _trim(value: float, digits: int) -> str:
    """Round to ``digits`` decimals and drop trailing zeros: 3.50 → 3.5, 1260 stays 1260."""
    text = f"{value:.{digits}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text
