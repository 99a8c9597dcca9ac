"""Read-side queries: filtered, paginated campaign lists."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from kb.extensions import db
from kb.models import Campaign


@dataclass(frozen=True, slots=True)
class CampaignFilter:
    """Filters of the campaign list; a None or empty value means "any"."""

    industry: str | None = None
    goal_type: str | None = None
    status: str | None = None
    # Campaigns that ran at any time between these dates (inclusive).
    date_from: date | None = None
    date_to: date | None = None
    trashed: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    """One page of campaigns and where it sits in the whole result."""

    items: list[Campaign]
    total: int
    page: int
    per_page: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", max(1, math.ceil(self.total / self.per_page)))


def list_campaigns(filters: CampaignFilter, *, page: int, per_page: int) -> Page:
    """Return one page of campaigns matching ``filters``, newest start date first."""
    conditions: list[sa.ColumnElement[bool]] = [
        Campaign.deleted_at.is_not(None) if filters.trashed else Campaign.deleted_at.is_(None)
    ]
    if filters.industry:
        conditions.append(Campaign.industry == filters.industry)
    if filters.goal_type:
        conditions.append(Campaign.goal_type == filters.goal_type)
    if filters.status:
        conditions.append(Campaign.status == filters.status)
    if filters.date_from:
        conditions.append(Campaign.end_date >= filters.date_from)
    if filters.date_to:
        conditions.append(Campaign.start_date <= filters.date_to)

    total = db.session.scalar(sa.select(sa.func.count(Campaign.id)).where(*conditions)) or 0
    order = (
        (Campaign.deleted_at.desc(),)
        if filters.trashed
        else (Campaign.start_date.desc(), Campaign.id.desc())
    )
    items = db.session.scalars(
        sa.select(Campaign)
        .where(*conditions)
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return Page(items=list(items), total=total, page=page, per_page=per_page)


def industries() -> list[str]:
    """Return the industries in use, for the filter menu."""
    return list(
        db.session.scalars(
            sa.select(Campaign.industry)
            .where(Campaign.deleted_at.is_(None))
            .distinct()
            .order_by(Campaign.industry)
        )
    )
