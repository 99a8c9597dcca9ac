"""A worker's start-up reconcile finds the campaigns a model has no vectors for, by index probes.

It runs in every worker at boot (kb/searching/worker.py), so at 100,000 campaigns reading every
stored passage row (1.35 M rows, their vectors beside the model and size it checked) cost each
worker the whole table while its first requests waited for the disk and the cores.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.extensions import db
from kb.models import IndexOutbox, PassageEmbedding
from kb.searching import indexer
from tests.factories import campaign_payload


def _create(client: FlaskClient, title: str) -> int:
    response = client.post(
        "/api/v1/campaigns", json=campaign_payload(title=title, external_id=f"reconcile-{title}")
    )
    assert response.status_code == 201, response.get_json()
    campaign_id: int = response.get_json()["id"]
    return campaign_id


def _queued(campaign_ids: list[int]) -> set[int]:
    rows = db.session.scalars(
        sa.select(IndexOutbox.campaign_id).where(
            IndexOutbox.embedded_at.is_(None), IndexOutbox.campaign_id.in_(campaign_ids)
        )
    )
    return set(rows)


def test_reconcile_queues_live_campaigns_without_vectors_of_the_model(
    app: Flask, client: FlaskClient
) -> None:
    kept, lost, resized, trashed = (
        _create(client, title) for title in ("有向量", "向量丢失", "向量维度不同", "已删除")
    )
    assert client.delete(f"/api/v1/campaigns/{trashed}").status_code == 204
    with app.app_context():
        embedder = indexer.get_indexes().embedders[0]
        db.session.execute(sa.delete(PassageEmbedding).where(PassageEmbedding.campaign_id == lost))
        # Rows of a model of the same name but another size do not count as its vectors.
        db.session.execute(
            sa.update(PassageEmbedding)
            .where(PassageEmbedding.campaign_id == resized)
            .values(dim=embedder.dim + 1)
        )
        db.session.execute(
            sa.delete(PassageEmbedding).where(PassageEmbedding.campaign_id == trashed)
        )
        db.session.commit()
        assert indexer.reconcile() == 2
        assert _queued([kept, lost, resized, trashed]) == {lost, resized}
        # Already queued: not queued twice.
        assert indexer.reconcile() == 0


def test_reconcile_reads_stored_passages_only_through_the_campaign_index(
    app: Flask, client: FlaskClient
) -> None:
    if app.config["DATABASE_URL"].startswith("postgresql"):
        return  # the plan below is SQLite's; the statement is the same on both
    _create(client, "一个活动")
    with app.app_context():
        statements: list[tuple[str, object]] = []

        def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if "passage_embedding" in statement:
                statements.append((statement, parameters))

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            indexer.reconcile()
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        assert statements
        with db.engine.connect() as connection:
            for statement, parameters in statements:
                plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                for row in plan:
                    detail = str(row[-1])
                    if "passage_embedding" in detail or " p " in f" {detail} ":
                        # Each campaign's first row by (campaign_id, model): never all the model's rows.
                        assert "campaign_id=?" in detail, (statement, detail)
