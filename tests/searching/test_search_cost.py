"""What a search costs: outcome facts in a fixed number of queries, drafts ranked on the pool."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.extensions import db
from kb.models import Metric
from kb.searching import indexer, service
from kb.searching.documents import metric_fact
from search.embedder import FakeEmbedder, Vectors
from tests.factories import campaign_payload


def create(client: FlaskClient, **overrides: Any) -> int:
    response = client.post("/api/v1/campaigns", json=campaign_payload(**overrides))
    assert response.status_code == 201, response.get_json()
    campaign_id: int = response.get_json()["id"]
    return campaign_id


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """Collect the SQL statements run on the app's engine meanwhile."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


def test_outcome_facts_cost_the_same_queries_for_any_number_of_campaigns(
    app: Flask, client: FlaskClient
) -> None:
    ids = [
        create(client, external_id=f"facts-{n}", goal_type=goal)
        for n, goal in enumerate(["reactivation", "gmv", "acquisition", "retention", "gmv"])
    ]
    create(client, external_id="facts-planned", status="planned")  # no outcome yet
    with app.app_context():
        service._metric_facts(ids)  # the connection's own set-up statements, once
        counts = []
        for some in (ids[:1], ids):
            db.session.expunge_all()
            with counted_statements() as statements:
                facts = service._metric_facts(some)
            counts.append(len(statements))
        # Before: two lazy loads per campaign to find its key metric (1 + 2 × 5 here).
        assert counts[0] == counts[1] <= 2
        assert set(facts) == set(ids)
        db.session.expunge_all()
        for campaign_id in ids:
            metrics = db.session.scalars(
                sa.select(Metric).where(Metric.campaign_id == campaign_id).order_by(Metric.position)
            ).all()
            assert facts[campaign_id] == tuple(metric_fact(m) for m in metrics)
        assert sum(fact.is_key for fact in facts[ids[0]]) == 1


class ThreadRecordingEmbedder(FakeEmbedder):
    """A fake that notes which thread encoded each text."""

    def __init__(self, name: str, dim: int) -> None:
        super().__init__(name=name, dim=dim)
        self.threads: list[str] = []

    def encode_queries(self, texts: list[str]) -> Vectors:
        self.threads.append(threading.current_thread().name)
        return super().encode_queries(texts)


def test_similar_cases_encode_the_draft_on_the_pool_with_the_same_result(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = [ThreadRecordingEmbedder("fake", 64), ThreadRecordingEmbedder("fake2", 48)]
    monkeypatch.setattr(indexer, "_embedders", lambda app: models)
    create(client, external_id="sim-1")
    create(client, external_id="sim-2", title="宝妈拼团裂变", goal_type="referral")
    create(client, external_id="sim-3", title="健身年卡续费", goal_type="retention")
    draft = {"title": "沉睡会员召回 满减券", "goal_type": "reactivation", "audience": ["沉睡用户"]}

    def answer() -> dict[str, Any]:
        response = client.post("/api/v1/similar", json=draft)
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        body.pop("took_ms", None)
        return body

    monkeypatch.setattr(service, "CONCURRENT", False)
    sequential = answer()
    for model in models:
        model.threads.clear()
    monkeypatch.setattr(service, "CONCURRENT", True)
    concurrent = answer()

    assert concurrent == sequential
    assert sequential["similar"]
    for model in models:
        assert model.threads, "the draft was never encoded"
        assert all(name.startswith("kb-search") for name in model.threads)
