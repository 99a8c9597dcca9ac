"""The service layer: every write to a campaign goes through here, in one transaction."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from kb import audit, errors, outbox
from kb.campaigns import history
from kb.campaigns import metrics as metric_catalog
from kb.campaigns.schemas import CampaignIn, validate_campaign
from kb.campaigns.serialize import campaign_to_input
from kb.database import write_transaction
from kb.extensions import db
from kb.models import (
    Campaign,
    CampaignVersion,
    Document,
    Hypothesis,
    IndexOutbox,
    Metric,
    Reward,
    utcnow,
)
from kb.validation import InvalidInputError


class NotFoundError(errors.NotFoundError):
    """The campaign does not exist (or is in the trash where that matters)."""

    message = "找不到该活动"


class VersionNotFoundError(errors.NotFoundError):
    """The campaign has no such version in its history."""

    message = "该活动没有这个版本"


class VersionConflictError(errors.ConflictError):
    """The campaign changed since the client read it."""


def get_campaign(
    campaign_id: int, *, include_trashed: bool = False, for_update: bool = False
) -> Campaign:
    """Return the campaign with this id; raise NotFoundError for a missing or trashed one.

    ``for_update`` (inside a write transaction) reads the row afresh and locks it on PostgreSQL
    (SELECT … FOR UPDATE), so concurrent writers of one campaign queue up instead of racing;
    SQLite's BEGIN IMMEDIATE already lets one writer in at a time.
    """
    campaign = db.session.get(
        Campaign, campaign_id, with_for_update=for_update, populate_existing=for_update
    )
    if campaign is None or (campaign.deleted_at is not None and not include_trashed):
        raise NotFoundError(campaign_id)
    return campaign


def create_campaign(data: CampaignIn, *, action: str = "create") -> Campaign:
    """Store a new campaign; raise InvalidInputError when its external_id is taken."""
    with write_transaction() as session:
        _ensure_external_id_free(data.external_id, None)
        campaign = Campaign()
        _apply(campaign, data)
        session.add(campaign)
        _flush_unique()
        _record(campaign, action)
    outbox.notify()
    return campaign


def update_campaign(
    campaign_id: int,
    data: CampaignIn,
    *,
    expected_version: int | None = None,
    action: str = "update",
    note: str = "",
) -> Campaign:
    """Replace a campaign's fields; raise VersionConflictError if it moved past ``expected_version``."""
    if expected_version is not None:
        # A stale version is refused without waiting for the write lock.
        _check_version(get_campaign(campaign_id), expected_version)
    with write_transaction():
        campaign = get_campaign(campaign_id, for_update=True)
        _check_version(campaign, expected_version)
        _ensure_external_id_free(data.external_id, campaign.id)
        history.ensure_baseline(campaign)
        try:
            _apply(campaign, data)  # loading the old child rows may flush the UPDATE already
            _flush_unique()
        except StaleDataError:
            # The row changed under us all the same (a writer outside this service): no lock held.
            raise VersionConflictError(_current_version(campaign_id)) from None
        _record(campaign, action, note)
    outbox.notify()
    return campaign


UpsertOutcome = Literal["created", "updated", "unchanged"]


def upsert_campaign(data: CampaignIn) -> tuple[Campaign, UpsertOutcome]:
    """Create the campaign, or update the one with the same external_id; say which happened."""
    existing = None
    if data.external_id:
        existing = db.session.scalar(
            sa.select(Campaign.id).where(Campaign.external_id == data.external_id)
        )
    if existing is None:
        return create_campaign(data, action="import"), "created"
    campaign = get_campaign(existing, include_trashed=True)
    if campaign.deleted_at is None and validate_campaign(campaign_to_input(campaign)) == data:
        return campaign, "unchanged"  # already as the source says: no new version
    if campaign.deleted_at is not None:
        # Importing again brings a trashed campaign back: the source says it should exist.
        restore_campaign(existing)
    return update_campaign(existing, data, action="import"), "updated"


def trash_campaign(campaign_id: int, *, expected_version: int | None = None) -> Campaign:
    """Move a campaign to the trash, from where it can be restored."""
    with write_transaction():
        campaign = get_campaign(campaign_id, for_update=True)
        _check_version(campaign, expected_version)
        history.ensure_baseline(campaign)
        campaign.deleted_at = utcnow()
        db.session.flush()
        _record(campaign, "trash")
    outbox.notify()
    return campaign


def restore_campaign(campaign_id: int) -> Campaign:
    """Bring a campaign back from the trash."""
    with write_transaction():
        campaign = get_campaign(campaign_id, include_trashed=True, for_update=True)
        if campaign.deleted_at is None:
            raise NotFoundError(campaign_id)
        history.ensure_baseline(campaign)
        campaign.deleted_at = None
        db.session.flush()
        _record(campaign, "restore")
    outbox.notify()
    return campaign


def revert_campaign(
    campaign_id: int, version: int, *, expected_version: int | None = None
) -> Campaign:
    """Make an earlier version the current one (as a new version: nothing is overwritten)."""
    snapshot = history.get_version(campaign_id, version)
    if snapshot is None:
        raise VersionNotFoundError(campaign_id, version)
    data = validate_campaign(history.snapshot_of(snapshot))
    return update_campaign(
        campaign_id,
        data,
        expected_version=expected_version,
        action="revert",
        note=f"恢复到第 {version} 版",
    )


def purge_campaign(campaign_id: int) -> str:
    """Delete a trashed campaign for good, with its history; return its title."""
    with write_transaction() as session:
        campaign = get_campaign(campaign_id, include_trashed=True, for_update=True)
        if campaign.deleted_at is None:
            raise NotFoundError(campaign_id)  # only what is in the trash can be purged
        title = campaign.title
        audit.record("campaign.purge", _target(campaign))
        session.execute(
            sa.delete(CampaignVersion).where(CampaignVersion.campaign_id == campaign_id)
        )
        session.delete(campaign)
        # The entry outlives the row (no foreign key): the indexer drops the campaign's entries.
        _mark_for_indexing(campaign)
    outbox.notify()
    return title


def _record(campaign: Campaign, action: str, note: str = "") -> None:
    """Keep the new version, log who did it, and mark the index stale: all in this transaction."""
    history.record(campaign, action, note)
    detail = f"第 {campaign.version} 版" + (f"，{note}" if note else "")
    audit.record(f"campaign.{action}", _target(campaign), detail)
    _mark_for_indexing(campaign)


def _target(campaign: Campaign) -> str:
    return f"campaign:{campaign.id} {campaign.title}"


def _mark_for_indexing(campaign: Campaign) -> None:
    """Record, in the write's own transaction, that the campaign's index entries are stale."""
    db.session.add(IndexOutbox(campaign_id=campaign.id))


def _current_version(campaign_id: int) -> int:
    db.session.rollback()
    version = db.session.scalar(sa.select(Campaign.version).where(Campaign.id == campaign_id))
    return int(version or 0)


def _check_version(campaign: Campaign, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != campaign.version:
        raise VersionConflictError(campaign.version)


def _ensure_external_id_free(external_id: str | None, own_id: int | None) -> None:
    if not external_id:
        return
    holder = db.session.scalar(sa.select(Campaign.id).where(Campaign.external_id == external_id))
    if holder is not None and holder != own_id:
        raise InvalidInputError({"external_id": f"已被活动 #{holder} 使用"})


def _flush_unique() -> None:
    try:
        db.session.flush()
    except IntegrityError:
        # Only the external_id is unique; a concurrent writer took it after our check.
        raise InvalidInputError({"external_id": "已被其他活动使用"}) from None


def _apply(campaign: Campaign, data: CampaignIn) -> None:
    """Copy validated fields onto the model; child rows are replaced as a whole list."""
    for field in (
        "title", "industry", "department", "business_line", "goal_type", "goal", "audience",
        "products", "channels", "tags", "start_date", "end_date", "status", "budget_cny",
        "summary", "went_well", "problems", "lessons", "recommendations", "external_id",
    ):  # fmt: skip
        setattr(campaign, field, getattr(data, field))
    # Touch the row itself so its version moves even when only child rows changed.
    campaign.updated_at = utcnow()
    campaign.rewards = [
        Reward(position=i, type=r.type, detail=r.detail, stackable=r.stackable)
        for i, r in enumerate(data.rewards)
    ]
    campaign.metrics = [
        Metric(
            position=i,
            name=m.name,
            catalog_key=_catalog_key(m.name),
            unit=m.unit,
            baseline=m.baseline,
            target=m.target,
            actual=m.actual,
            key=m.key,
        )
        for i, m in enumerate(data.metrics)
    ]
    campaign.hypotheses = [
        Hypothesis(position=i, statement=h.statement, result=h.result, evidence=h.evidence)
        for i, h in enumerate(data.hypotheses)
    ]
    campaign.documents = [
        Document(position=i, title=d.title, kind=d.kind, body=d.body)
        for i, d in enumerate(data.documents)
    ]


def _catalog_key(name: str) -> str | None:
    entry = metric_catalog.lookup(name)
    return entry.key if entry else None
