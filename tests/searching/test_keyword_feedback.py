"""Pseudo-relevance feedback through the real keyword index: the meaning top's shared words."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.searching import feedback
from kb.searching.indexer import get_indexes
from search import feedback as terms
from search.keyword import SearchFilters
from tests.factories import campaign_payload


def create(client: FlaskClient, number: int, **text: Any) -> int:
    payload = campaign_payload(external_id=f"fb-{number:03d}", **text)
    response = client.post("/api/v1/campaigns", json=payload)
    assert response.status_code == 201, response.get_json()
    campaign_id: int = response.get_json()["id"]
    return campaign_id


def test_the_meaning_top_s_shared_word_finds_a_campaign_the_query_missed(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [
        create(client, 1, title="宝妈拼团", lessons="团长激励要即时到账", problems="团长流失"),
        create(client, 2, title="社区拼团", lessons="团长激励分层发放", problems="团长不活跃"),
        create(client, 3, title="水果拼团", lessons="团长佣金月结太慢"),
        create(client, 4, title="直播带货", lessons="主播话术生硬"),
        create(client, 5, title="积分兑换", lessons="积分规则复杂"),
        create(client, 6, title="新品试吃", lessons="试吃台位置偏僻"),
    ]
    keyword = [(ids[3], 1.0)]  # the user's own words found only the live-stream retro
    semantic = [(ids[0], 0.9), (ids[1], 0.8), (ids[4], 0.1)]
    with app.test_request_context():
        indexes = get_indexes()
        unchanged = feedback.expand_keyword(
            indexes, [], keyword, semantic, SearchFilters(), limit=20
        )
        assert unchanged == (keyword, [])  # off by default: measured not to help
        monkeypatch.setattr(terms, "ENABLED", True)
        monkeypatch.setattr(terms, "MAX_DOC_SHARE", 0.5)  # six campaigns: 团长 is in three
        ranking, added = feedback.expand_keyword(
            indexes, ["拼团"], keyword, semantic, SearchFilters(), limit=20
        )
    assert "团长" in added
    assert "拼团" not in added
    found = [cid for cid, _ in ranking]
    # The third 团长 retro joins, though neither the query nor the meaning top named it.
    assert ids[2] in found
    assert ids[3] in found
    assert ids[4] not in found
    assert ids[5] not in found
