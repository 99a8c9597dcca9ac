"""A worker's first pass loads what the first searches need before it reconciles and drains.

At 30,000 campaigns the first search of a fresh worker spent ≈ 2.5 s of ≈ 6 reading the keyword
index's field lengths document by document, while the first pass reconciled beside it
(bench/results/startup_mem_session9.txt).
"""

from __future__ import annotations

import gc

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.searching import indexer, worker
from tests.factories import campaign_payload


def test_first_pass_warms_up_before_reconciling_and_draining(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in ("warm_up", "reconcile", "drain"):
        monkeypatch.setattr(worker, name, lambda name=name: calls.append(name))
    monkeypatch.setattr(gc, "freeze", lambda: None)  # not this test process's objects
    with app.app_context():
        worker._first_pass()
    assert calls == ["warm_up", "reconcile", "drain"]


def test_warm_up_reads_the_keyword_field_lengths(app: Flask, client: FlaskClient) -> None:
    response = client.post("/api/v1/campaigns", json=campaign_payload(external_id="warm-1"))
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        segments = indexer.get_indexes().keyword._segments
        segments._arrays.clear()  # as a freshly started worker: no segment's arrays read yet
        assert not any(name == "lengths" for _, name in segments._arrays)
        indexer.warm_up()
        assert any(name == "lengths" for _, name in segments._arrays)
