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


def format_cny(value: float | None) -> str:
    """Format yuan the way budgets are written: 8,000 元, 12.5 万元, 1.2 亿元."""
    if value is None:
        return "—"
    if abs(value) >= 1e8:
        return f"{_trim(value / 1e8, 2)} 亿元"
    if abs(value) >= 1e4:
        return f"{_trim(value / 1e4, 2)} 万元"
    return f"{value:,.0f} 元" if value == int(value) else f"{value:,.2f} 元"


def format_number(value: float | None) -> str:
    """Format a metric value without trailing zeros: 12.5, 3, 1,200."""
    if value is None:
        return "—"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def format_pct(value: float | None, *, signed: bool = False) -> str:
    """Format a percentage with one decimal: 87.5%, +12.0%."""
    if value is None:
        return "—"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def _trim(value: float, digits: int) -> str:
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")
