"""History is stored compactly: the newest version whole and compressed, older ones as deltas."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.campaigns import history
from kb.extensions import db
from kb.models import CampaignVersion
from tests.factories import campaign_payload

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Common characters of campaign text, drawn at random: text zlib cannot shrink much beyond UTF-8.
HANZI = "活动复盘用户转化留存召回拉新社群企微短信直播优惠券满减积分会员复购成交额预算渠道目标人群商品奖励"


def _text(chars: int, seed: int) -> str:
    rng = random.Random(seed)  # noqa: S311  # reproducible test text, not a secret
    return "".join(rng.choice(HANZI) for _ in range(chars))


def _large_body() -> dict[str, Any]:
    documents = [
        {"title": f"方案 {n}", "kind": "strategy", "body": _text(60_000, n)} for n in range(3)
    ]
    return campaign_payload(summary=_text(60_000, 99), documents=documents)


def _put(client: FlaskClient, campaign_id: int, body: dict[str, Any], version: int) -> int:
    response = client.put(f"/api/v1/campaigns/{campaign_id}", json={**body, "version": version})
    assert response.status_code == 200, response.get_json()
    new_version: int = response.get_json()["version"]
    return new_version


def _stored_bytes(app: Flask) -> int:
    with app.app_context():
        packed = db.session.scalars(sa.select(CampaignVersion.snapshot_zlib)).all()
        plain = db.session.scalars(sa.select(CampaignVersion.legacy_snapshot)).all()
        db.session.commit()
    return sum(len(p or b"") for p in packed) + sum(len(json.dumps(p)) for p in plain if p)


def test_saves_of_a_large_record_add_little_to_history(app: Flask, client: FlaskClient) -> None:
    body = _large_body()
    created = client.post("/api/v1/campaigns", json=body).get_json()
    version = created["version"]
    for n in range(6):
        body["lessons"] = f"第 {n + 1} 次修改：短信召回 ROI 最高。"
        version = _put(client, created["id"], body, version)

    # 7 versions of a 240,000-character record: about one compressed copy, not seven.
    assert _stored_bytes(app) < 1.3 * len(history.pack(body))
    for n, item in enumerate(
        reversed(client.get(f"/api/v1/campaigns/{created['id']}/versions").get_json()["items"])
    ):
        detail = client.get(f"/api/v1/campaigns/{created['id']}/versions/{item['version']}")
        snapshot = detail.get_json()["snapshot"]
        assert snapshot["documents"][2]["body"] == body["documents"][2]["body"]
        expected = (
            campaign_payload()["lessons"] if n == 0 else f"第 {n} 次修改：短信召回 ROI 最高。"
        )
        assert snapshot["lessons"] == expected
        assert item["changed_fields"] == ([] if n == 0 else ["经验教训"])

    restored = client.post(
        f"/api/v1/campaigns/{created['id']}/versions/1/restore", json={"version": version}
    ).get_json()
    assert restored["lessons"] == campaign_payload()["lessons"]
    assert restored["summary"] == body["summary"]


def test_every_kept_version_rebuilds_after_the_oldest_are_dropped(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "MAX_VERSIONS", 3)
    body = campaign_payload()
    created = client.post("/api/v1/campaigns", json=body).get_json()
    version = created["version"]
    for n in range(5):
        body["goal"] = f"第 {n} 次修改"
        body["tags"] = [f"标签{n}"] if n % 2 else []
        version = _put(client, created["id"], body, version)
    with app.app_context():
        rows = history.snapshots(created["id"])
        # The newest is whole (needs nothing else); the others are deltas of the next.
        assert [row.delta_of for row, _ in rows] == [None, version, version - 1]
        rebuilt = [(row.version, snapshot["goal"], snapshot["tags"]) for row, snapshot in rows]
        db.session.commit()
    assert rebuilt == [
        (6, "第 4 次修改", []),
        (5, "第 3 次修改", ["标签3"]),
        (4, "第 2 次修改", []),
    ]
    page = client.get(f"/campaigns/{created['id']}/history/4")
    assert page.status_code == 200
    assert "第 2 次修改" in page.get_data(as_text=True)


def test_a_version_stored_before_compact_history_is_still_read(
    app: Flask, client: FlaskClient
) -> None:
    created = client.post("/api/v1/campaigns", json=campaign_payload(title="旧格式")).get_json()
    with app.app_context():
        row = db.session.scalar(sa.select(CampaignVersion))
        assert row is not None
        old = history.snapshot_of(row)
        # As an older release wrote it: the whole record as JSON in the snapshot column.
        row.legacy_snapshot, row.snapshot_zlib = old, None
        db.session.commit()
    body = campaign_payload(title="新格式")
    _put(client, created["id"], body, created["version"])
    detail = client.get(f"/api/v1/campaigns/{created['id']}/versions/1").get_json()
    assert detail["snapshot"]["title"] == "旧格式"
    assert (
        client.get(f"/api/v1/campaigns/{created['id']}/versions/2").get_json()["changes"][0][
            "label"
        ]
        == "活动名称"
    )


def test_the_migration_compacts_existing_versions_and_downgrades_whole(app: Flask) -> None:
    client = app.test_client()
    created = client.post("/api/v1/campaigns", json=campaign_payload(title="第一版")).get_json()
    _put(client, created["id"], campaign_payload(title="第二版"), created["version"])
    with app.app_context():
        db.session.remove()  # no open transaction to hold a lock against the ALTER TABLE
        flask_migrate.downgrade(directory=str(MIGRATIONS_DIR), revision="e7a41c9b2d60")
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("campaign_version")}
        assert "snapshot_zlib" not in columns
        with db.engine.connect() as connection:
            titles = connection.execute(
                sa.text("SELECT version, snapshot FROM campaign_version ORDER BY version")
            ).all()
        assert [(v, (s if isinstance(s, dict) else json.loads(s))["title"]) for v, s in titles] == [
            (1, "第一版"),
            (2, "第二版"),
        ]
        flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
        db.session.remove()
        rows = db.session.scalars(sa.select(CampaignVersion).order_by(CampaignVersion.version))
        converted = [(r.snapshot_zlib is not None, r.legacy_snapshot) for r in rows]
        assert converted == [(True, None), (True, None)]
        db.session.commit()
    listed = client.get(f"/api/v1/campaigns/{created['id']}/versions").get_json()["items"]
    assert [item["changed_fields"] for item in listed] == [["活动名称"], []]
