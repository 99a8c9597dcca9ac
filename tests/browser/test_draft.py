"""A planner drafts a campaign in a real browser and sees the collision, the analogs and the forecast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import serving, sign_in
from tests.conftest import make_app
from tests.drafts.test_drafting import PLANNED
from tests.factories import campaign_payload
from tests.integration.conftest import MODELS_DIR

pytestmark = pytest.mark.browser


@pytest.fixture
def drafting_server(tmp_path: Path) -> Iterator[str]:
    """A live server with the real models, four completed recalls and one planned campaign."""
    app = make_app(
        tmp_path,
        None,
        WTF_CSRF_ENABLED=True,
        TESTING=False,
        EMBEDDING_MODELS="e5,use",
        MODELS_DIR=str(MODELS_DIR),
    )
    client = app.test_client()
    for i, actual in enumerate((9.6, 12.5, 10.0, 13.0)):
        metrics = [
            {"name": "转化率", "unit": "%", "baseline": 8.0, "target": 12.0, "actual": actual}
        ]
        body = campaign_payload(
            external_id=f"recall-{i}", title=f"沉睡会员召回第{i}期", metrics=metrics
        )
        assert client.post("/api/v1/campaigns", json=body).status_code == 201
    assert client.post("/api/v1/campaigns", json=campaign_payload(**PLANNED)).status_code == 201
    with serving(app) as url:
        yield url


def test_draft_shows_collision_analogs_and_forecast(page: Page, drafting_server: str) -> None:
    sign_in(page, drafting_server, role="editor", next_path="/drafts/new")
    page.fill("input[name=title]", "双十二沉睡会员召回：叠加券 + 企微社群")
    page.fill("input[name=industry]", "电商")
    page.fill("input[name=business_line]", "鲜丰到家")
    page.select_option("select[name=goal_type]", "reactivation")
    page.fill("input[name=start_date]", "2026-12-12")
    page.fill("input[name=end_date]", "2026-12-20")
    page.fill("input[name=audience]", "沉睡用户、价格敏感用户")
    page.fill("input[name=products]", "有机蔬菜")
    page.fill("input[name='rewards-0-type']", "满减券")
    page.fill("input[name='rewards-0-detail']", "8折")
    page.check("input[name='rewards-0-stackable']")
    page.fill("input[name='metrics-0-name']", "转化率")
    page.fill("input[name='metrics-0-unit']", "%")
    page.fill("input[name='metrics-0-target']", "11")
    page.get_by_role("button", name="查看相似案例与冲突").click()

    conflict = page.locator(".conflict.stacking")
    expect(conflict).to_contain_text("双十二鲜丰会员日")
    expect(conflict).to_contain_text("优惠叠加风险")
    expect(conflict).to_contain_text("日期重叠 3 天")
    cases = page.locator(".similar-cases .case")
    expect(cases).to_have_count(4)
    expect(cases.first).to_contain_text("沉睡会员召回")
    expect(cases.first.locator(".why")).to_contain_text("同一目标：召回")
    expect(page.locator(".forecast-item")).to_contain_text("4 个相似活动中有 2 个")
    expect(page.locator("input[name=audience]")).to_have_value("沉睡用户、价格敏感用户")

    # "Not useful" hides a case for this draft and keeps the draft as typed.
    cases.first.get_by_role("button", name="不相关").click()
    expect(page.locator(".similar-cases .case")).to_have_count(3)
    expect(page.locator(".similar-cases")).to_contain_text("已隐藏 1 个")
    expect(page.locator("input[name=title]")).to_have_value("双十二沉睡会员召回：叠加券 + 企微社群")
