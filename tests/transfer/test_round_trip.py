"""Export → import into an empty database gives the same campaigns, for every export format."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.campaigns.serialize import campaign_to_input
from kb.demo import demo_records
from kb.extensions import db
from kb.models import Campaign
from kb.transfer.imports import import_stream
from tests.factories import campaign_payload

TRICKY = [
    campaign_payload(
        external_id=None,
        title="=SUM(A1:A3) 羊毛党 薅券复盘",
        goal="-20% 的获客成本；+15% 的复购；@全体成员 必读",
        audience=["-负数开头的人群", "25-35 岁女性, 一线城市", "@群成员"],
        products=["+会员专享", "'=已经转义过", "家电、数码"],
        rewards=[
            {"type": "满减券", "detail": "'=x", "stackable": True},
            {"type": "券", "detail": "a：b（可叠加）", "stackable": False},
        ],
        metrics=[
            {"name": "ROI", "unit": "", "baseline": -3.5, "target": 1e-07, "actual": 3.2e20},
            {"name": "A(x)", "unit": "万", "baseline": None, "target": None, "actual": -0.25},
            {"name": "=1+1", "unit": "%", "baseline": 0.0, "target": 12.5, "actual": 12.4999},
        ],
        summary="## 背景\n\n```\n## 不是章节 {#went_well}\n```\n\n- 行一\n\t缩进行",
        went_well="-开头没有空格",
        problems="",
        lessons="'单引号开头",
        hypotheses=[
            {"statement": "[1, 2]", "result": "inconclusive", "evidence": ""},
            {"statement": "+A 胜 B", "result": "refuted", "evidence": "（依据）"},
        ],
        documents=[
            {"title": "策略文档", "kind": "strategy", "body": "## 分层\n# 一级标题\n正文"},
            {"title": "=方案 B", "kind": "plan", "body": ""},
        ],
        tags=["-1", "@", "+"],
        budget_cny=None,
        business_line=None,
        status="running",
    ),
    campaign_payload(external_id="rt-002", title="同名活动", start_date="2024-01-01",
                     end_date="2024-01-31", metrics=[], documents=[], hypotheses=[],
                     rewards=[], audience=[], products=[], channels=[], tags=[], goal="",
                     summary="", went_well="", problems="", lessons="", recommendations=""),
    campaign_payload(external_id=None, title="同名活动", start_date="2024-02-01",
                     end_date="2024-02-29", budget_cny=0.0),
]  # fmt: skip


def _seed(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        for record in [*demo_records()[:8], *TRICKY]:
            services.create_campaign(validate_campaign(record))
        return _all()


def _all() -> list[dict[str, Any]]:
    campaigns = db.session.scalars(sa.select(Campaign).where(Campaign.deleted_at.is_(None)))
    return sorted(
        (campaign_to_input(c) for c in campaigns), key=lambda d: (d["title"], d["start_date"])
    )


def _import(app: Flask, payload: bytes, filename: str) -> list[dict[str, Any]]:
    with app.app_context():
        report = import_stream(io.BytesIO(payload), filename=filename)
        assert report.rejected == [], report.rejected
        assert report.warnings == []
        return _all()


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "jsonl"])
def test_list_export_round_trip(app: Flask, fresh_app: Callable[[], Flask], fmt: str) -> None:
    before = _seed(app)
    response = app.test_client().get(f"/campaigns/export.{fmt}")
    assert response.status_code == 200
    assert _import(fresh_app(), response.data, f"export.{fmt}") == before


def test_markdown_export_round_trip(app: Flask, fresh_app: Callable[[], Flask]) -> None:
    before = _seed(app)
    client = app.test_client()
    with app.app_context():
        ids = db.session.scalars(sa.select(Campaign.id).order_by(Campaign.id)).all()
    target = fresh_app()
    for campaign_id in ids:
        response = client.get(f"/campaigns/{campaign_id}/export.md")
        assert response.status_code == 200
        _import(target, response.data, "campaign.md")
    with target.app_context():
        assert _all() == before


def test_search_export_round_trip(app: Flask, fresh_app: Callable[[], Flask]) -> None:
    before = _seed(app)
    response = app.test_client().get("/search/export.jsonl?q=&industry=电商")
    assert response.status_code == 200
    expected = [c for c in before if c["industry"] == "电商"]
    assert expected
    assert _import(fresh_app(), response.data, "search.jsonl") == expected


def test_reimporting_an_export_changes_nothing(app: Flask) -> None:
    _seed(app)
    client = app.test_client()
    for fmt in ("csv", "xlsx", "jsonl"):
        payload = client.get(f"/campaigns/export.{fmt}").data
        with app.app_context():
            report = import_stream(io.BytesIO(payload), filename=f"x.{fmt}")
        assert report.counts["unchanged"] == len(report.rows) == 11, fmt
