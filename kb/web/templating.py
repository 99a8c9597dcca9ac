"""Jinja filters and globals: Chinese labels, formats and Markdown."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app

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
    )
    app.jinja_env.globals.update(
        GOAL_TYPES=labels.GOAL_TYPES,
        STATUSES=labels.STATUSES,
        DOCUMENT_KINDS=labels.DOCUMENT_KINDS,
        HYPOTHESIS_RESULTS=labels.HYPOTHESIS_RESULTS,
        SEARCH_MODES=labels.SEARCH_MODES,
        error_for=error_for,
    )


def _format_datetime(value: datetime | None) -> str:
    return rendering.format_datetime(value, current_app.config["TIMEZONE"])


def error_for(errors: dict[str, str], name: str) -> str | None:
    """Return the message for a field, or for the first bad item inside it (``audience.2``)."""
    if name in errors:
        return errors[name]
    prefix = name + "."
    return next((message for key, message in errors.items() if key.startswith(prefix)), None)
