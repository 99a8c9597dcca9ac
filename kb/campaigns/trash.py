"""Who moved a campaign to the trash, and when: read from the campaign's history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from kb.audit import describe_actor
from kb.extensions import db
from kb.models import CampaignVersion


@dataclass(frozen=True, slots=True)
class Trashing:
    """The latest move of a campaign to the trash: who (as the pages name them) and when."""

    by: str
    at: datetime


def trashings(campaign_ids: Iterable[int]) -> dict[int, Trashing]:
    """Return the latest trashing of each campaign (reads only the history's small columns)."""
    ids = list(campaign_ids)
    if not ids:
        return {}
    latest = (
        sa.select(CampaignVersion.campaign_id, sa.func.max(CampaignVersion.version).label("v"))
        .where(CampaignVersion.campaign_id.in_(ids), CampaignVersion.action == "trash")
        .group_by(CampaignVersion.campaign_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(
            CampaignVersion.campaign_id, CampaignVersion.actor, CampaignVersion.created_at
        ).join(
            latest,
            sa.and_(
                CampaignVersion.campaign_id == latest.c.campaign_id,
                CampaignVersion.version == latest.c.v,
            ),
        )
    )
    return {
        campaign_id: Trashing(by=describe_actor(actor), at=created_at)
        for campaign_id, actor, created_at in rows
    }
