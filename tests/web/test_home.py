"""The home page's sections on the demo data: this week, new retros, warnings, gaps, my drafts."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.demo import load_demo
from kb.extensions import db
from kb.insights.signals import signals_by_campaign
from kb.models import Campaign
from kb.web.home import RETRO_FIELDS, SECTION_ROWS, build_home
from tests.conftest import make_app
from tests.factories import campaign_payload

ME = "user:test-admin"  # the test client's user: what history records for its form saves


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """An app on the demo campaigns (SQLite); tests may add campaigns of their own."""
    app = make_app(Path(tmp_path_factory.mktemp("home")), None)
    with app.app_context():
        assert not load_demo().rejected
    return app


@pytest.fixture(scope="module")
def client(demo_app: Flask) -> FlaskClient:
    return demo_app.test_client()


def _has_retro(campaign: Campaign) -> bool:
    return any((getattr(campaign, name) or "").strip() for name in RETRO_FIELDS)


def _save_form(client: FlaskClient, **fields: str) -> int:
    data = {
        "title": "首页测试活动",
        "industry": "母婴",
        "department": "用户增长部",
        "goal_type": "referral",
        "status": "planned",
        "start_date": "2026-01-05",
        "end_date": "2026-01-18",
        **fields,
    }
    response = client.post("/campaigns/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_this_week_lists_the_campaigns_starting_monday_to_sunday(demo_app: Flask) -> None:
    with demo_app.app_context():
        starts = sorted(db.session.scalars(sa.select(Campaign.start_date)).all())
        day = starts[len(starts) // 2]
        home = build_home(day, ME)
        assert home.week_start.weekday() == 0
        assert home.week_start <= day <= home.week_end == home.week_start + timedelta(days=6)
        expected = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Campaign)
            .where(
                Campaign.start_date.between(home.week_start, home.week_end),
                Campaign.status != "cancelled",
                Campaign.deleted_at.is_(None),
            )
        )
        assert home.this_week.total == expected >= 1
        rows = home.this_week.rows
        assert all(home.week_start <= c.start_date <= home.week_end for c in rows)
        assert [c.start_date for c in rows] == sorted(c.start_date for c in rows)
        # A week with nothing starting: an empty section, not an error.
        assert build_home(date(2000, 1, 3), ME).this_week.total == 0


def test_new_retros_are_completed_campaigns_with_a_retro_newest_first(demo_app: Flask) -> None:
    with demo_app.app_context():
        home = build_home(date.today(), ME)
        rows = home.new_retros.rows
        assert len(rows) == SECTION_ROWS
        assert all(c.status == "completed" and _has_retro(c) for c in rows)
        assert [c.updated_at for c in rows] == sorted((c.updated_at for c in rows), reverse=True)
        completed = db.session.scalars(
            sa.select(Campaign).where(Campaign.status == "completed", Campaign.deleted_at.is_(None))
        ).all()
        assert home.new_retros.total == sum(_has_retro(c) for c in completed)


def test_warnings_list_campaigns_firing_signals_most_severe_first(demo_app: Flask) -> None:
    with demo_app.app_context():
        found = signals_by_campaign()
        home = build_home(date.today(), ME)
        assert home.warnings.total == len(found) > SECTION_ROWS
        assert len(home.warnings.rows) == SECTION_ROWS
        for warned in home.warnings.rows:
            assert warned.signals == found[warned.campaign.id]
        order = {"high": 0, "medium": 1, "low": 2}
        worst = [min(order[s.severity] for s in w.signals) for w in home.warnings.rows]
        assert worst == sorted(worst)


def test_missing_retros_are_ended_campaigns_without_one(
    demo_app: Flask, client: FlaskClient
) -> None:
    today = date(2026, 12, 7)
    body = {
        "went_well": "",
        "problems": "",
        "lessons": "",
        "status": "completed",
        "external_id": None,
    }
    finished = client.post("/api/v1/campaigns", json=campaign_payload(title="已结束无复盘", **body))
    overdue = campaign_payload(
        title="过了结束日仍在进行", **{**body, "status": "running"}, end_date="2026-11-30"
    )
    past_end = client.post("/api/v1/campaigns", json=overdue)
    cancelled = client.post(
        "/api/v1/campaigns",
        json=campaign_payload(title="已取消", **{**body, "status": "cancelled"}),
    )
    written = client.post(
        "/api/v1/campaigns", json=campaign_payload(title="已写复盘", external_id=None)
    )
    ids = [r.get_json()["id"] for r in (finished, past_end, cancelled, written)]
    with demo_app.app_context():
        missing = build_home(today, ME).missing_retros
        listed = {c.id for c in missing.rows}
        assert {ids[0], ids[1]} <= listed
        assert not {ids[2], ids[3]} & listed
        assert all(not _has_retro(c) for c in missing.rows)
        assert missing.total == len(missing.rows) == 2  # the demo's ended campaigns all have one
    for campaign_id in ids:
        assert client.delete(f"/api/v1/campaigns/{campaign_id}").status_code in (200, 204)


def test_my_drafts_are_the_plans_i_created(demo_app: Flask, client: FlaskClient) -> None:
    mine = _save_form(client, title="我的计划：春季拼团")
    with demo_app.app_context():
        home = build_home(date.today(), ME)
        assert [c.id for c in home.my_drafts.rows] == [mine]
        assert home.drafts_are_mine
        # Someone else's view: the demo's plans were imported from the command line.
        assert build_home(date.today(), "user:someone-else").my_drafts.total == 0
        # Nobody signed in as a user: every plan, and the page says so.
        everyone = build_home(date.today(), None)
        planned = db.session.scalar(
            sa.select(sa.func.count()).select_from(Campaign).where(Campaign.status == "planned")
        )
        assert everyone.my_drafts.total == planned > 1
        assert not everyone.drafts_are_mine
    page = client.get("/").get_data(as_text=True)
    assert "我的计划：春季拼团" in page
    assert client.delete(f"/api/v1/campaigns/{mine}").status_code in (200, 204)


def test_home_page_shows_every_section_and_a_search_box(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(r'<form[^>]*action="/search"', page)
    assert 'name="q"' in page
    sections = re.findall(r'data-section="([a-z_]+)"', page)
    assert sections == ["this_week", "warnings", "new_retros", "missing_retros", "my_drafts"]
    for heading in ("本周上线", "需要关注的预警", "新复盘", "待补复盘", "我的草案"):
        assert heading in page
    assert "signal-badge severity-high" in page


def test_a_viewer_sees_no_edit_buttons(demo_app: Flask) -> None:
    page = demo_app.test_client(role="viewer").get("/").get_data(as_text=True)
    assert "需要关注的预警" in page
    assert "新建复盘" not in page.split("<main>", 1)[1]
