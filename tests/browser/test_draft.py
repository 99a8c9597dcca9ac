"""A planner drafts a campaign in a real browser: the page lands on the summary band, then details."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import serving, sign_in
from tests.browser.test_layout import _contrast_violations, _overflow
from tests.conftest import make_app
from tests.drafts.test_drafting import PLANNED, STACKING_LESSON
from tests.factories import campaign_payload
from tests.integration.conftest import MODELS_DIR

pytestmark = pytest.mark.browser

STACKING_CASE = {
    "external_id": "four-coupons",
    "title": "2023 双十一全站大促：四券叠加被羊毛党集中薅券",
    "goal_type": "gmv",
    "audience": ["价格敏感用户", "新用户"],
    "products": ["零食饮料"],
    "rewards": [
        {"type": "满减券", "detail": "每满 300 减 50", "stackable": True},
        {"type": "折扣", "detail": "品类券 8.5 折", "stackable": True},
    ],
    "start_date": "2023-10-24",
    "end_date": "2023-11-11",
    "lessons": f"- {STACKING_LESSON}\n- 大促复盘要把 ROI 和毛利放在第一屏",
    "recommendations": "建立统一的优惠叠加矩阵",
    "hypotheses": [],
    "metrics": [{"name": "GMV", "unit": "万元", "target": 12000.0, "actual": 12640.0}],
}


@pytest.fixture
def drafting_server(tmp_path: Path) -> Iterator[str]:
    """A live server with the real models: four recalls, the 四券叠加 sale, one planned campaign."""
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
    assert (
        client.post("/api/v1/campaigns", json=campaign_payload(**STACKING_CASE)).status_code == 201
    )
    assert client.post("/api/v1/campaigns", json=campaign_payload(**PLANNED)).status_code == 201
    with serving(app) as url:
        yield url


def draft_the_stacking_case(page: Page) -> None:
    """Fill in the 双十二 recall draft (stacking 8折 coupons) and analyse it."""
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
    page.fill("input[name='metrics-0-baseline']", "8")
    page.fill("input[name='metrics-0-target']", "11")
    page.get_by_role("button", name="查看相似案例与冲突").click()


def in_view(locator: Locator, height: int) -> None:
    """Assert the element is on screen as the page landed: not above it, not below the fold."""
    box = locator.bounding_box()
    assert box is not None
    assert box["y"] >= 0, box
    assert box["y"] + box["height"] <= height, box


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (390, 844)])
def test_analysis_lands_on_the_summary_band(
    browser: Browser, drafting_server: str, width: int, height: int
) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        sign_in(page, drafting_server, role="editor", next_path="/drafts/new")
        expect(page.locator("input[name='metrics-0-actual']")).to_have_count(0)
        draft_the_stacking_case(page)

        band = page.locator("#summary")
        expect(band).to_be_visible()
        collision = band.locator(".band-collisions")
        expect(collision).to_contain_text("双十二鲜丰会员日")
        discount = band.locator(".band-discount")
        expect(discount).to_contain_text("最坏叠加折扣约 36%")
        lesson = band.locator(".band-lesson").first
        expect(lesson).to_contain_text(STACKING_LESSON)
        expect(lesson).to_contain_text("四券叠加")
        forecast = band.locator(".band-forecast")
        expect(forecast).to_contain_text("转化率")
        expect(band.locator(".band-similar")).to_contain_text("主要指标达成")

        # Seen as the page lands, without the planner scrolling: the band is the first thing on
        # screen and each of these lines is above the fold.
        page.wait_for_function("window.scrollY > 0")
        band_box = band.bounding_box()
        assert band_box is not None
        # The browser scrolls to whole pixels (rounded) while the band's top sits at a fraction
        # (line heights of 1.6 em): landing exactly on it leaves it up to half a pixel above or
        # below the edge (-0.36 px at 1440, -0.31 px at 390 on the page as it is), never more.
        assert -0.5 < band_box["y"] <= 4, band_box
        for line in (collision, discount, lesson, forecast):
            in_view(line, height)
        details = page.locator("#collisions").bounding_box()
        assert details is not None
        assert details["y"] >= band_box["y"] + band_box["height"]
        # The analysed page, as the layout tests check the blank one.
        overflow = _overflow(page)
        assert overflow["scroll"] <= overflow["width"], overflow
        assert _contrast_violations(page) == []
    finally:
        context.close()


def test_draft_shows_collision_analogs_and_forecast(page: Page, drafting_server: str) -> None:
    sign_in(page, drafting_server, role="editor", next_path="/drafts/new")
    draft_the_stacking_case(page)

    conflict = page.locator(".conflict.stacking")
    expect(conflict).to_contain_text("双十二鲜丰会员日")
    expect(conflict).to_contain_text("优惠叠加风险")
    expect(conflict).to_contain_text("日期重叠 3 天")
    cases = page.locator(".similar-cases .case")
    expect(cases).to_have_count(5)
    expect(cases.first).to_contain_text("沉睡会员召回")
    expect(cases.first.locator(".why")).to_contain_text("同一目标：召回")
    expect(page.locator(".forecast-item")).to_contain_text("转化率")
    expect(page.locator("input[name=audience]")).to_have_value("沉睡用户、价格敏感用户")
    expect(page.locator("input[name='metrics-0-baseline']")).to_have_value("8")

    # "Not useful" hides a case for this draft and keeps the draft as typed.
    cases.first.get_by_role("button", name="不相关").click()
    expect(page.locator(".similar-cases .case")).to_have_count(4)
    expect(page.locator(".similar-cases")).to_contain_text("已隐藏 1 个")
    expect(page.locator("input[name=title]")).to_have_value("双十二沉睡会员召回：叠加券 + 企微社群")
