"""The demo data: valid, varied, realistic enough to search, and loaded idempotently."""

from __future__ import annotations

from collections import Counter

from flask.testing import FlaskCliRunner

from kb.campaigns.metrics import assess, lookup
from kb.campaigns.schemas import validate_campaign
from kb.demo import demo_records
from kb.vocab import GOAL_TYPES


def test_demo_records_are_valid_and_varied() -> None:
    records = demo_records()
    campaigns = [validate_campaign(record) for record in records]
    assert len(campaigns) >= 40
    assert len({c.external_id for c in campaigns}) == len(campaigns)
    assert set(Counter(c.goal_type for c in campaigns)) == set(GOAL_TYPES)
    assert len({c.industry for c in campaigns}) >= 8
    assert {"planned", "running", "completed"} <= {c.status for c in campaigns}


def test_a_third_of_completed_demo_campaigns_missed_a_target() -> None:
    completed = [validate_campaign(r) for r in demo_records() if r["status"] == "completed"]
    missed = 0
    for campaign in completed:
        outcomes = []
        for metric in campaign.metrics:
            entry = lookup(metric.name)
            direction = entry.direction if entry else "higher"
            outcomes.append(assess(direction, metric.baseline, metric.target, metric.actual).hit)
        missed += any(hit is False for hit in outcomes)
    assert missed >= len(completed) / 3 - 1


def test_demo_command_is_idempotent(runner: FlaskCliRunner) -> None:
    count = len(demo_records())
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert f"新建 {count}，更新 0，未变 0，拒绝 0" in first.output
    second = runner.invoke(args=["demo"])
    assert f"新建 0，更新 0，未变 {count}，拒绝 0" in second.output
