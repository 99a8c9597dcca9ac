"""Jinja filters and globals: Chinese labels, formats and Markdown."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, request

from kb import vocab as labels
from kb.web import rendering


def init_app(app: Flask) -> None:
    """Register the template filters and globals."""
    app.jinja_env.filters.update(
        markdown=rendering.render_markdown,
        zh_date=rendering.format_date,
        zh_datetime=_format_datetime,
        cny=rendering.format_cny,
        num=rendering.format_number,
        pct=rendering.format_pct,
        change=rendering.format_change,
    )
    app.jinja_env.globals.update(
        GOAL_TYPES=labels.GOAL_TYPES,
        STATUSES=labels.STATUSES,
        DOCUMENT_KINDS=labels.DOCUMENT_KINDS,
        HYPOTHESIS_RESULTS=labels.HYPOTHESIS_RESULTS,
        SEARCH_MODES=labels.SEARCH_MODES,
        error_for=error_for,
        field_label=labels.field_label,
        nav_section=nav_section,
    )


# The nav entry each page belongs to, by blueprint, then by endpoint where a blueprint spans several.
_SECTION_BY_BLUEPRINT = {
    "history": "campaigns",
    "drafts": "drafts",
    "admin": "admin",
}
_SECTION_BY_ENDPOINT = {
    "pages.index": "home",
    "pages.search_page": "search",
    "pages.campaign_list": "campaigns",
    "pages.campaign_detail": "campaigns",
    "pages.campaign_edit": "campaigns",
    "pages.campaign_new": "new",
    "pages.trash": "trash",
    "insights.portfolio_page": "portfolio",
    "insights.lessons_page": "lessons",
    "insights.playbook_new": "lessons",
    "insights.playbook_detail": "lessons",
    "insights.playbook_edit": "lessons",
    "transfer.import_page": "import",
    "transfer.import_preview": "import",
    "transfer.import_confirm": "import",
    "transfer.import_draft": "import",
    "transfer.print_page": "campaigns",
    "auth.account": "account",
}


def nav_section() -> str | None:
    """Return the nav entry the current page belongs to, for its highlight."""
    endpoint = request.endpoint or ""
    if endpoint in _SECTION_BY_ENDPOINT:
        return _SECTION_BY_ENDPOINT[endpoint]
    return _SECTION_BY_BLUEPRINT.get(request.blueprint or "")


def _format_datetime(value: datetime | None) -> str:
    return rendering.format_datetime(value, current_app.config["TIMEZONE"])


def error_for(errors: dict[str, str], name: str) -> str | None:
    """Return the message for a field, or for the first bad item inside it (``audience.2``)."""
    if name in errors:
        return errors[name]
    prefix = name + "."
    return next((message for key, message in errors.items() if key.startswith(prefix)), None)
