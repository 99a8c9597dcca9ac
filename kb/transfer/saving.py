"""Create or update imported campaigns through the service layer, keyed the way files are.

A record with an external_id is the campaign with that id (``services.upsert_campaign``). One
without is the campaign with the same title and dates, so re-importing a spreadsheet that never
had ids updates instead of duplicating. Every write is a ``kb.campaigns.services`` call; this module only
reads to decide which one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa

from kb.campaigns import services
from kb.campaigns.schemas import CampaignIn, validate_campaign
from kb.campaigns.serialize import campaign_to_input
from kb.extensions import db
from kb.models import Campaign
from kb.validation import InvalidInputError

Outcome = Literal["created", "updated", "unchanged"]


def _key(data: CampaignIn) -> tuple[str, ...]:
    if data.external_id:
        return ("external_id", data.external_id)
    return ("title", data.title, data.start_date.isoformat(), data.end_date.isoformat())


def _digest(data: CampaignIn) -> bytes:
    return hashlib.sha1(data.model_dump_json().encode(), usedforsecurity=False).digest()


def find_by_title_and_dates(data: CampaignIn) -> Campaign | None:
    """Return the campaign with this title and dates (live ones first, then the trash).

    Raise InvalidInputError when several live campaigns match: the file must then say which one
    it means, by external_id.
    """
    rows = db.session.execute(
        sa.select(Campaign.id, Campaign.deleted_at)
        .where(
            Campaign.title == data.title,
            Campaign.start_date == data.start_date,
            Campaign.end_date == data.end_date,
        )
        .order_by(Campaign.id)
    ).all()
    live = [row.id for row in rows if row.deleted_at is None]
    if len(live) > 1:
        ids = "、".join(f"#{i}" for i in live[:5])
        raise InvalidInputError(
            {
                "title": f"已有 {len(live)} 个同名且日期相同的活动（{ids}），"
                "无法确定更新哪一个：请在文件中填写活动编号 external_id"
            }
        )
    chosen = live[0] if live else (rows[-1].id if rows else None)
    return None if chosen is None else db.session.get(Campaign, chosen)


def _matched(data: CampaignIn) -> tuple[Campaign | None, CampaignIn]:
    """Return the stored campaign a record refers to, and the record to write to it.

    A record matched by title and dates keeps the stored campaign's external_id: a file without
    ids must not erase the ids other systems use.
    """
    if data.external_id:
        found = db.session.scalar(
            sa.select(Campaign).where(Campaign.external_id == data.external_id)
        )
        return found, data
    found = find_by_title_and_dates(data)
    if found is not None and found.external_id:
        data = data.model_copy(update={"external_id": found.external_id})
    return found, data


def _same(campaign: Campaign, data: CampaignIn) -> bool:
    return campaign.deleted_at is None and validate_campaign(campaign_to_input(campaign)) == data


def save(data: CampaignIn) -> tuple[Campaign, Outcome]:
    """Create the campaign or update the one it matches; say which happened."""
    if data.external_id:
        return services.upsert_campaign(data)
    existing, data = _matched(data)
    if existing is None:
        return services.create_campaign(data), "created"
    if _same(existing, data):
        return existing, "unchanged"
    if existing.deleted_at is not None:
        # As with external ids: importing again brings a trashed campaign back.
        services.restore_campaign(existing.id)
    return services.update_campaign(existing.id, data), "updated"


@dataclass(slots=True)
class Planner:
    """Say what ``save`` would do, without writing: for a dry run (preview).

    Records earlier in the same file count as stored, so a file that lists a campaign twice
    previews as "created" then "updated" (or "unchanged"), as the real run will go.
    """

    seen: dict[tuple[str, ...], tuple[int | None, bytes]] = field(default_factory=dict)

    def plan(self, data: CampaignIn) -> tuple[int | None, Outcome]:
        """Return (id of the campaign it would write, or None for a new one; the outcome)."""
        key = _key(data)
        earlier = self.seen.get(key)
        if earlier is not None:
            campaign_id, digest = earlier
            self.seen[key] = (campaign_id, _digest(data))
            return campaign_id, "unchanged" if digest == _digest(data) else "updated"
        existing, matched = _matched(data)
        outcome: Outcome = "created"
        if existing is not None:
            outcome = "unchanged" if _same(existing, matched) else "updated"
        self.seen[key] = (existing.id if existing else None, _digest(data))
        return (existing.id if existing else None), outcome
