"""The semantic branch on the pool gives exactly what the sequential path gives."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.searching import indexer, service
from kb.searching.indexer import get_indexes
from search.embedder import FakeEmbedder, Vectors, query_cache
from tests.factories import campaign_payload


class ThreadRecordingEmbedder(FakeEmbedder):
    """A fake that notes which thread encoded each query."""

    def __init__(self, name: str, dim: int) -> None:
        super().__init__(name=name, dim=dim)
        self.threads: list[str] = []

    def encode_queries(self, texts: list[str]) -> Vectors:
        self.threads.append(threading.current_thread().name)
        return super().encode_queries(texts)


@pytest.fixture
def two_models(monkeypatch: pytest.MonkeyPatch) -> list[ThreadRecordingEmbedder]:
    models = [ThreadRecordingEmbedder("fake", 64), ThreadRecordingEmbedder("fake2", 48)]
    monkeypatch.setattr(indexer, "_embedders", lambda app: models)
    return models


CAMPAIGNS = [
    {
        "title": "宝妈拼团裂变：三人成团送纸尿裤",
        "industry": "母婴",
        "lessons": "团长激励要即时到账",
    },
    {"title": "双十一满减券叠加被薅羊毛", "industry": "电商", "lessons": "叠加规则要先算毛利"},
    {"title": "健身年卡续费：教练私教体验课", "industry": "健身", "lessons": "续费提醒提前一个月"},
    {"title": "直播带货退货率高", "industry": "美妆", "lessons": "主播话术不要过度承诺"},
    {"title": "沉睡会员短信召回", "industry": "零售", "lessons": "短信要带专属券"},
]
QUERIES = [
    ("拼团 纸尿裤", "hybrid"),
    ("怎么把很久没买东西的会员拉回来", "hybrid"),
    ("coupon stacking abuse", "semantic"),
    ("直播 退货", "semantic"),
    ("续费", "keyword"),
    ("ROI 低于预期的直播活动", "hybrid"),
]


def _answers(client: FlaskClient) -> list[dict[str, Any]]:
    bodies = []
    for text, mode in QUERIES:
        response = client.get("/api/v1/search", query_string={"q": text, "mode": mode})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        body.pop("took_ms")
        bodies.append(body)
    return bodies


def test_concurrent_and_sequential_paths_return_the_same_results(
    two_models: list[ThreadRecordingEmbedder],
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for number, fields in enumerate(CAMPAIGNS):
        payload = campaign_payload(external_id=f"cc-{number}", **fields)
        assert client.post("/api/v1/campaigns", json=payload).status_code == 201
    with app.app_context():
        assert [e.name for e in get_indexes().embedders] == ["fake", "fake2"]

    monkeypatch.setattr(service, "CONCURRENT", False)
    sequential = _answers(client)
    for model in two_models:
        query_cache(model).clear()  # the concurrent run must encode again, on the pool
        model.threads.clear()
    monkeypatch.setattr(service, "CONCURRENT", True)
    concurrent = _answers(client)

    assert concurrent == sequential
    assert any(body["results"] for body in concurrent)
    for model in two_models:
        assert model.threads, "the semantic branch never ran"
        assert all(name.startswith("kb-search") for name in model.threads)
