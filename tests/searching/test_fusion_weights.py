"""The fusion weights a query gets: from what its text shows (an outcome condition), no labels."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from kb.searching import service
from search.hybrid import fuse_rankings
from search.outcomes import parse_outcome
from tests.factories import campaign_payload


def weights_for(text: str) -> dict[str, float]:
    intent = parse_outcome(text, service._catalog_lookup, service._METRIC_ALIASES)
    return service.fusion_weights(intent)


@pytest.mark.parametrize(
    "text",
    ["ROI 低于预期的直播活动", "转化率没达标的拼团", "livestream campaigns with ROI below target"],
)
def test_a_query_with_an_outcome_condition_weighs_the_keyword_side_more(text: str) -> None:
    weights = weights_for(text)
    assert weights["keyword"] == service.OUTCOME_KEYWORD_WEIGHT
    assert weights["semantic"] == service.WEIGHTS["semantic"]
    assert service.WEIGHTS["keyword"] != service.OUTCOME_KEYWORD_WEIGHT


@pytest.mark.parametrize("text", ["宝妈拼团裂变", "group buying led by moms"])
def test_a_query_without_one_keeps_the_global_weights(text: str) -> None:
    assert weights_for(text) == service.WEIGHTS


def test_search_fuses_with_the_weights_of_its_query(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = client.post("/api/v1/campaigns", json=campaign_payload())
    assert response.status_code == 201, response.get_json()
    used: list[dict[str, float]] = []

    def spy(rankings: Any, *, weights: dict[str, float], **options: Any) -> Any:
        used.append(dict(weights))
        return fuse_rankings(rankings, weights=weights, **options)

    monkeypatch.setattr(service, "fuse_rankings", spy)
    for query in ("双十一 沉睡会员 召回", "双十一 召回 ROI 低于预期"):
        response = client.get("/api/v1/search", query_string={"q": query, "mode": "hybrid"})
        assert response.status_code == 200, response.get_json()
    assert [w["keyword"] for w in used] == [
        service.WEIGHTS["keyword"],
        service.OUTCOME_KEYWORD_WEIGHT,
    ]
