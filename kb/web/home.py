"""The home page: what an ops team looks at first (search, this week, new retros, warnings, gaps).

Every section is one bounded query (a few rows each, plus a count), so the page stays fast at
thousands of campaigns; the warnings read metric rows only (kb.insights.signals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, render_template
from sqlalchemy.orm import InstrumentedAttribute

from kb.access import current_principal
from kb.extensions import db
from kb.insights.signals import Signal, signals_by_campaign
from kb.models import Campaign, CampaignVersion

# Rows per section: a glance, not a list (each section links to the full list).
SECTION_ROWS = 6
# A retro counts as written when one of these has text.
RETRO_FIELDS = ("went_well", "problems", "lessons")
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Warned:
    campaign: Campaign
    signals: list[Signal]


T = TypeVar("T")


@dataclass(frozen=True)
class Section(Generic[T]):
    rows: list[T] = field(default_factory=list)
    total: int = 0


@dataclass(frozen=True)
class Home:
    today: date
    week_start: date
    week_end: date
    this_week: Section[Campaign]
    new_retros: Section[Campaign]
    warnings: Section[Warned]
    missing_retros: Section[Campaign]
    my_drafts: Section[Campaign]
    drafts_are_mine: bool  # False: nobody is signed in as a user, so the section lists all plans


def today_local() -> date:
    """Return today's date in the team's time zone."""
    return datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()


def build_home(today: date, actor: str | None) -> Home:
    """Collect the home page's sections as of ``today`` for ``actor`` ("user:NAME" or None)."""
    week_start = today - timedelta(days=today.weekday())
    week_end = week_start + timedelta(days=6)
    return Home(
        today=today,
        week_start=week_start,
        week_end=week_end,
        this_week=_section(
            [Campaign.start_date.between(week_start, week_end), Campaign.status != "cancelled"],
            Campaign.start_date,
        ),
        new_retros=_section(
            [Campaign.status == "completed", _has_retro()], Campaign.updated_at.desc()
        ),
        warnings=_warnings(),
        missing_retros=_section(
            [
                # Ended: marked completed, or past its end date (a cancelled one needs no retro).
                sa.or_(Campaign.status == "completed", Campaign.end_date < today),
                Campaign.status != "cancelled",
                sa.not_(_has_retro()),
            ],
            Campaign.end_date.desc(),
        ),
        my_drafts=_section(
            [Campaign.status == "planned", *([_created_by(actor)] if actor else [])],
            Campaign.updated_at.desc(),
        ),
        drafts_are_mine=actor is not None,
    )


def home_page() -> str:
    """Render the home page for the signed-in user."""
    principal = current_principal()
    actor = principal.actor if principal and principal.kind == "user" else None
    return render_template("home.html", home=build_home(today_local(), actor))


def _live() -> sa.ColumnElement[bool]:
    return Campaign.deleted_at.is_(None)


def _has_retro() -> sa.ColumnElement[bool]:
    columns = [getattr(Campaign, name) for name in RETRO_FIELDS]
    return sa.or_(*(sa.func.length(sa.func.trim(column)) > 0 for column in columns))


def _created_by(actor: str) -> sa.ColumnElement[bool]:
    # The first version records who created the campaign (by form, API or import). History
    # keeps a campaign's newest 50 versions, so a plan edited more often loses its creator.
    return sa.exists().where(
        CampaignVersion.campaign_id == Campaign.id,
        CampaignVersion.action.in_(("create", "import")),
        CampaignVersion.actor == actor,
    )


def _section(
    conditions: list[sa.ColumnElement[bool]],
    order: sa.ColumnElement[Any] | InstrumentedAttribute[Any],
) -> Section[Campaign]:
    where = [_live(), *conditions]
    rows = db.session.scalars(
        sa.select(Campaign).where(*where).order_by(order, Campaign.id).limit(SECTION_ROWS)
    ).all()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Campaign).where(*where))
    return Section(list(rows), int(total or 0))


def _warnings() -> Section[Warned]:
    found = signals_by_campaign()
    if not found:
        return Section()
    # The most severe first, then the campaigns that ran most recently.
    rows = db.session.execute(
        sa.select(Campaign.id, Campaign.end_date).where(Campaign.id.in_(list(found)))
    )
    ends: dict[int, date] = {row.id: row.end_date for row in rows}

    def rank(campaign_id: int) -> tuple[int, int]:
        worst = min(_SEVERITY_ORDER.get(s.severity, 9) for s in found[campaign_id])
        return worst, -ends[campaign_id].toordinal()

    chosen = sorted(found, key=rank)[:SECTION_ROWS]
    campaigns = {
        c.id: c for c in db.session.scalars(sa.select(Campaign).where(Campaign.id.in_(chosen)))
    }
    return Section([Warned(campaigns[i], found[i]) for i in chosen], len(found))
