"""The key metric (主要指标): chosen by the author or by goal type, stored, served, migrated."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.campaigns import services
from kb.campaigns.key_metric import GOAL_METRICS, choose, key_metric
from kb.campaigns.schemas import validate_campaign
from kb.database import MIGRATIONS_DIR
from kb.extensions import db
from kb.models import Metric
from kb.transfer.imports import import_stream
from kb.validation import InvalidInputError
from tests.factories import campaign_payload


@dataclass
class M:
    """A metric as choosing reads it."""

    name: str
    target: float | None = 1.0
    key: bool = False
    catalog_key: str | None = None


def _pick(goal: str | None, *metrics: M) -> tuple[str, str] | None:
    chosen = choose(goal, list(metrics))
    return None if chosen is None else (metrics[chosen[0]].name, chosen[1])


@pytest.mark.parametrize(
    ("goal", "names", "expected"),
    [
        ("gmv", ["观看人次", "ROI", "成交额"], "成交额"),
        ("gmv", ["观看人次", "交易總額"], "交易總額"),  # Traditional
        ("acquisition", ["获客成本", "首单用户数", "7日留存"], "首单用户数"),
        ("acquisition", ["CAC", "New sign-ups"], "New sign-ups"),
        ("retention", ["客单价", "30日留存", "复购率"], "复购率"),  # 复购 before 留存
        ("reactivation", ["转化率", "回流用户数"], "回流用户数"),
        ("conversion", ["客单价", "支付转化率"], "支付转化率"),
        ("activation", ["订单量", "宵夜活跃用户"], "宵夜活跃用户"),  # not in the catalog
        ("referral", ["新增用户数", "K值"], "K值"),
        ("brand", ["互动率", "品牌搜尋量"], "品牌搜尋量"),
        ("brand", ["互动率", "NPS"], "NPS"),
    ],
)
def test_the_goal_type_chooses_when_the_author_did_not(
    goal: str, names: list[str], expected: str
) -> None:
    assert _pick(goal, *(M(n) for n in names)) == (expected, "goal")


def test_every_goal_type_has_a_row() -> None:
    from kb.vocab import GOAL_TYPES

    assert set(GOAL_METRICS) == set(GOAL_TYPES)


def test_the_author_wins_then_the_goal_then_the_first_target() -> None:
    assert _pick("gmv", M("观看人次", key=True), M("GMV")) == ("观看人次", "author")
    # The author may choose a metric without a target: it is shown, with no verdict.
    assert _pick("gmv", M("GMV"), M("复盘评分", target=None, key=True)) == ("复盘评分", "author")
    # Only metrics with a target are judged by the goal type and the fallback.
    assert _pick("gmv", M("GMV", target=None), M("ROI")) == ("ROI", "first_target")
    assert _pick("brand", M("到店人次"), M("新品销量")) == ("到店人次", "first_target")
    assert _pick("gmv", M("GMV", target=None)) is None
    assert _pick(None, M("ROI"), M("GMV")) == ("ROI", "first_target")


@dataclass
class C:
    """A campaign as the verdict reads it."""

    goal_type: str
    status: str
    end_date: date
    metrics: list[Any]


@dataclass
class Row:
    name: str
    target: float | None
    actual: float | None
    baseline: float | None = None
    key: bool = False
    catalog_key: str | None = None


def test_a_campaign_not_completed_is_in_progress_never_missed() -> None:
    rows = [Row("观看人次", 100, 300), Row("GMV", 1000, 100)]
    running = key_metric(C("gmv", "running", date(2026, 12, 31), rows), today=date(2026, 12, 7))
    assert running is not None
    assert running.name == "GMV"
    assert running.hit is None
    assert running.verdict == "进行中（截至 2026年12月7日）"
    # A campaign whose end date passed but is still marked running reads as of its end date.
    late = key_metric(C("gmv", "running", date(2026, 11, 30), rows), today=date(2026, 12, 7))
    assert late is not None
    assert late.verdict == "进行中（截至 2026年11月30日）"
    done = key_metric(C("gmv", "completed", date(2026, 11, 30), rows))
    assert done is not None
    assert (done.hit, done.verdict, done.attainment_pct) == (False, "未达成", 10.0)
    cancelled = key_metric(C("gmv", "cancelled", date(2026, 11, 30), rows))
    assert cancelled is not None
    assert (cancelled.hit, cancelled.verdict) == (None, "已取消")
    lower = key_metric(C("acquisition", "completed", date(2026, 1, 1), [Row("获客成本", 40, 50)]))
    assert lower is not None
    assert (lower.hit, lower.verdict, lower.attainment_pct) == (False, "未达成", 80.0)


def _metrics(*keys: bool) -> list[dict[str, Any]]:
    names = ("观看人次", "GMV", "ROI")
    return [
        {"name": n, "unit": "", "baseline": 1.0, "target": 2.0, "actual": 3.0, "key": k}
        for n, k in zip(names, keys, strict=False)
    ]


def test_at_most_one_key_metric_with_a_chinese_error() -> None:
    validate_campaign(campaign_payload(metrics=_metrics(False, True, False)))
    with pytest.raises(InvalidInputError) as caught:
        validate_campaign(campaign_payload(metrics=_metrics(True, False, True)))
    assert caught.value.fields == {"metrics": "主要指标只能选一个，现在选了 2 个：观看人次、ROI"}


def test_the_api_stores_and_serves_the_choice(client: FlaskClient) -> None:
    body = campaign_payload(goal_type="gmv", metrics=_metrics(True, False, False))
    created = client.post("/api/v1/campaigns", json=body)
    assert created.status_code == 201, created.get_json()
    campaign_id = created.get_json()["id"]
    metrics = client.get(f"/api/v1/campaigns/{campaign_id}").get_json()["metrics"]
    assert [(m["key"], m["is_key"]) for m in metrics] == [
        (True, True),
        (False, False),
        (False, False),
    ]

    # No choice: the GMV campaign is judged by GMV (key stays false, is_key says which it is).
    update = {**body, "metrics": _metrics(False, False, False), "version": 1}
    assert client.put(f"/api/v1/campaigns/{campaign_id}", json=update).status_code == 200
    metrics = client.get(f"/api/v1/campaigns/{campaign_id}").get_json()["metrics"]
    assert [(m["key"], m["is_key"]) for m in metrics] == [
        (False, False),
        (False, True),
        (False, False),
    ]

    two = client.post("/api/v1/campaigns", json={**body, "metrics": _metrics(True, True)})
    assert two.status_code == 422
    assert two.get_json()["error"]["fields"]["metrics"].startswith("主要指标只能选一个")


def test_the_form_offers_and_keeps_the_choice(app: Flask, client: FlaskClient) -> None:
    form = {
        "title": "618 直播",
        "industry": "电商",
        "department": "直播中心",
        "goal_type": "gmv",
        "status": "completed",
        "start_date": "2024-06-01",
        "end_date": "2024-06-18",
        "metrics-0-name": "观看人次",
        "metrics-0-target": "100",
        "metrics-0-actual": "300",
        "metrics-1-name": "GMV",
        "metrics-1-target": "1000",
        "metrics-1-actual": "800",
        "metrics-1-key": "on",
    }
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert 'name="metrics-0-key"' in page
    assert "主要指标" in page
    saved = client.post("/campaigns/new", data=form)
    assert saved.status_code == 302
    campaign_id = int(saved.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    with app.app_context():
        chosen = db.session.scalars(
            sa.select(Metric.name).where(Metric.campaign_id == campaign_id, Metric.key.is_(True))
        ).all()
        assert chosen == ["GMV"]
    edit = client.get(f"/campaigns/{campaign_id}/edit").get_data(as_text=True)
    assert 'name="metrics-1-key" checked' in edit
    assert 'name="metrics-0-key" >' in edit or 'name="metrics-0-key">' in edit

    both = client.post("/campaigns/new", data={**form, "metrics-0-key": "on"})
    assert both.status_code == 422
    assert "主要指标只能选一个，现在选了 2 个：观看人次、GMV" in both.get_data(as_text=True)


def test_a_jsonl_export_and_import_keep_the_choice(app: Flask, client: FlaskClient) -> None:
    body = campaign_payload(
        external_id="km-1", goal_type="gmv", metrics=_metrics(False, False, True)
    )
    assert client.post("/api/v1/campaigns", json=body).status_code == 201
    exported = client.get("/campaigns/export.jsonl").data
    assert b'"key": true' in exported or b'"key":true' in exported
    with app.app_context():
        services.trash_campaign(
            db.session.scalar(sa.select(Metric.campaign_id).where(Metric.key.is_(True)))
        )
        import_stream(io.BytesIO(exported.replace(b"km-1", b"km-2")), filename="x.jsonl")
        rows = db.session.execute(
            sa.select(Metric.name, Metric.key).order_by(Metric.campaign_id.desc(), Metric.position)
        ).all()
    assert [tuple(r) for r in rows[:3]] == [("观看人次", False), ("GMV", False), ("ROI", True)]


def test_the_migration_adds_the_column_false_for_existing_metrics(app: Flask) -> None:
    with app.app_context():
        services.create_campaign(validate_campaign(campaign_payload(goal_type="gmv")))
        db.session.remove()  # no open transaction to hold a lock against the ALTER TABLE
        flask_migrate.downgrade(directory=str(MIGRATIONS_DIR), revision="ec6f749441e9")
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("metric")}
        assert "key" not in columns
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
        db.session.remove()
        assert "key" in {c["name"] for c in sa.inspect(db.engine).get_columns("metric")}
        keys = db.session.scalars(sa.select(Metric.key)).all()
        assert keys
        assert not any(keys)
