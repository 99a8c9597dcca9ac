"""The service layer: upserts by external_id, the trash, and all-or-nothing writes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.extensions import db
from kb.models import Campaign, Metric
from kb.validation import InvalidInputError
from tests.factories import campaign_payload

pytestmark = pytest.mark.usefixtures("app_context")


def test_upsert_creates_updates_and_leaves_unchanged() -> None:
    data = validate_campaign(campaign_payload())
    campaign, outcome = services.upsert_campaign(data)
    assert outcome == "created"
    assert services.upsert_campaign(data)[1] == "unchanged"
    assert campaign.version == 1
    changed = validate_campaign(campaign_payload(title="新标题"))
    updated, outcome = services.upsert_campaign(changed)
    assert (outcome, updated.id, updated.version, updated.title) == (
        "updated",
        campaign.id,
        2,
        "新标题",
    )


def test_upsert_restores_a_trashed_campaign() -> None:
    campaign, _ = services.upsert_campaign(validate_campaign(campaign_payload()))
    services.trash_campaign(campaign.id)
    restored, outcome = services.upsert_campaign(validate_campaign(campaign_payload()))
    assert outcome == "updated"
    assert restored.deleted_at is None


def test_a_failed_write_leaves_nothing_behind() -> None:
    services.create_campaign(validate_campaign(campaign_payload()))
    with pytest.raises(InvalidInputError):
        services.create_campaign(validate_campaign(campaign_payload(title="重复的外部编号")))
    assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Metric.id))) == 4


def test_changing_only_child_rows_moves_the_version() -> None:
    campaign = services.create_campaign(validate_campaign(campaign_payload()))
    data = validate_campaign(campaign_payload(metrics=[{"name": "GMV", "actual": 1.0}]))
    assert services.update_campaign(campaign.id, data, expected_version=1).version == 2
    with pytest.raises(services.VersionConflictError):
        services.update_campaign(campaign.id, data, expected_version=1)


def test_restore_of_a_live_campaign_is_not_found() -> None:
    campaign = services.create_campaign(validate_campaign(campaign_payload()))
    with pytest.raises(services.NotFoundError):
        services.restore_campaign(campaign.id)
