"""A campaign's metric facts read once per campaign equal the facts read metric by metric."""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import load_only, selectinload

from kb.demo import load_demo
from kb.extensions import db
from kb.models import Campaign, Metric
from kb.searching.documents import metric_fact, metric_facts
from tests.conftest import make_app, release


def test_facts_per_campaign_equal_facts_per_metric(sqlite_template: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    shutil.copy(sqlite_template, tmp_path / "data" / "kb.sqlite3")
    app: Flask = make_app(tmp_path, None)
    try:
        with app.app_context():
            assert not load_demo().rejected
            # Variety the demo lacks: an author's key metric, no target anywhere, a blank unit.
            first, second, third, fourth = db.session.scalars(
                sa.select(Campaign).order_by(Campaign.id).limit(4)
            ).all()
            first.metrics[-1].key = True
            for metric in second.metrics:
                metric.target = None
                metric.unit = ""
            third.goal_type, fourth.goal_type = "reactivation", "other"  # other metrics fit
            db.session.commit()
            db.session.expunge_all()
            # Loaded as the outcome lift loads them (kb.searching.service._metric_facts).
            campaigns = db.session.scalars(
                sa.select(Campaign).options(
                    load_only(Campaign.id, Campaign.goal_type, Campaign.status),
                    selectinload(Campaign.metrics),
                )
            ).all()
            keys = 0
            for campaign in campaigns:
                expected = tuple(metric_fact(metric) for metric in campaign.metrics)
                assert metric_facts(campaign) == expected, campaign.id
                keys += sum(fact.is_key for fact in expected)
            assert len(campaigns) == 55
            assert keys > 40  # the key metric is not trivially False
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Metric)) > 100
    finally:
        release(app)
