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
from kb.searching.facts import FactsCache
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


def selects(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def test_outcome_facts_cost_the_same_queries_for_any_number_of_campaigns(
    app: Flask, client: FlaskClient
) -> None:
    ids = [
        create(client, external_id=f"facts-{n}", goal_type=goal)
        for n, goal in enumerate(["reactivation", "gmv", "acquisition", "retention", "gmv"])
    ]
    create(client, external_id="facts-planned", status="planned")  # no outcome yet
    with app.app_context():
        FactsCache().facts(ids)  # the connection's own set-up statements, once
        counts = []
        for some in (ids[:1], ids):
            db.session.expunge_all()
            with counted_statements() as statements:
                facts = FactsCache().facts(some)  # nothing kept yet: every campaign loaded
            counts.append(len(statements))
        # Before: two lazy loads per campaign to find its key metric (1 + 2 × 5 here); now the
        # stamps, the campaigns, their metrics.
        assert counts[0] == counts[1] <= 3
        assert set(facts) == set(ids)
        db.session.expunge_all()
        for campaign_id in ids:
            metrics = db.session.scalars(
                sa.select(Metric).where(Metric.campaign_id == campaign_id).order_by(Metric.position)
            ).all()
            assert facts[campaign_id] == tuple(metric_fact(m) for m in metrics)
        assert sum(fact.is_key for fact in facts[ids[0]]) == 1


def test_kept_facts_cost_one_query_and_an_edit_is_read_again(
    app: Flask, client: FlaskClient
) -> None:
    ids = [create(client, external_id=f"kept-{n}") for n in range(3)]
    with app.app_context():
        cache = FactsCache()
        first = cache.facts(ids)
        db.session.expunge_all()
        with counted_statements() as statements:
            again = cache.facts(ids)
        assert len(selects(statements)) == 1  # the campaigns' stamps only
        assert again == first
    edited = {**campaign_payload(external_id="kept-1"), "version": 1}
    edited["metrics"][0]["actual"] = edited["metrics"][0]["target"] * 3
    response = client.put(f"/api/v1/campaigns/{ids[1]}", json=edited)
    assert response.status_code == 200, response.get_json()
    with app.app_context():
        db.session.expunge_all()
        with counted_statements() as statements:
            after = cache.facts(ids)
        assert len(selects(statements)) == 3  # stamps, then the edited campaign and its metrics
        assert after[ids[0]] == first[ids[0]]
        assert after[ids[1]] != first[ids[1]]
        assert after[ids[1]][0].actual == edited["metrics"][0]["target"] * 3
        metrics = db.session.scalars(
            sa.select(Metric).where(Metric.campaign_id == ids[1]).order_by(Metric.position)
        ).all()
        assert after[ids[1]] == tuple(metric_fact(m) for m in metrics)


def test_kept_facts_follow_status_and_trash_and_stay_bounded(
    app: Flask, client: FlaskClient
) -> None:
    ids = [create(client, external_id=f"bound-{n}") for n in range(4)]
    with app.app_context():
        cache = FactsCache(size=2)
        assert set(cache.facts(ids)) == set(ids)
        assert len(cache) == 2  # the least recently used dropped
        assert set(cache.facts(ids)) == set(ids)  # and loaded again
    assert client.delete(f"/api/v1/campaigns/{ids[0]}").status_code in (200, 204)
    running = {**campaign_payload(external_id="bound-1", status="running"), "version": 1}
    assert client.put(f"/api/v1/campaigns/{ids[1]}", json=running).status_code == 200
    with app.app_context():
        assert set(cache.facts(ids)) == set(ids[2:])  # trashed and unfinished have no outcome


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
