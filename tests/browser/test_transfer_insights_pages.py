"""In a real browser at 390×844 and 1440×900 (issue 16), on the demo data: the campaign page loads
its similar cases after the page; the import preview with the values as read; the playbook index
and the form's campaign picker; lessons; a trashed campaign's notice; the trash and the audit
log. Nothing scrolls sideways at 390 px, no console error, no failed request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from kb.demo import load_demo
from tests.browser.conftest import serving, watched_page
from tests.conftest import make_app

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
CSV = (
    "活动名称,行业,部门,目标类型,开始日期,结束日期,预算（万元）,GMV_目标,GMV_实际\n"
    "夜宵节 预览,本地生活,外卖事业部,GMV,2024/7/15,2024年8月15日,12,2800,abc\n"
)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = make_app(tmp_path_factory.mktemp("mine"), None, WTF_CSRF_ENABLED=True, TESTING=False)
    with app.app_context():
        assert not load_demo().rejected
    with serving(app) as url:
        yield url


def _fits(page: Page, where: str) -> None:
    found: dict[str, Any] = page.evaluate(
        """() => ({
            scroll: document.scrollingElement.scrollWidth,
            width: window.innerWidth,
            wide: [...document.querySelectorAll("body *")]
                .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 5).map((e) => `${e.tagName}.${e.className}`),
        })"""
    )
    assert found["scroll"] <= found["width"], (where, found)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_my_pages_in_a_browser(
    browser: Browser, demo_url: str, viewport: dict[str, int], tmp_path: Path
) -> None:
    page, problems = watched_page(
        browser, viewport, demo_url, timeout_ms=15_000, allowed_status=410
    )

    # The campaign page: a placeholder with progress, then the analysis in its place.
    page.goto(f"{demo_url}/campaigns/1")
    expect(page.locator("h1").first).to_be_visible()
    expect(page.locator("section.analysis#similar")).to_be_visible()
    expect(page.locator("#similar-cases .case").first).to_be_visible()
    expect(page.locator(".similar-loading")).to_have_count(0)
    _fits(page, "campaign")

    # The import preview shows the values as read and the value it left empty.
    upload = tmp_path / "values.csv"
    upload.write_text(CSV, encoding="utf-8")
    page.goto(f"{demo_url}/import")
    page.set_input_files("input[name=file]", str(upload))
    page.get_by_role("button", name="上传并预览").click()
    expect(page.locator("h1")).to_have_text("导入预览")
    row = page.locator("tr.outcome-created")
    expect(row).to_contain_text("第 2 行 GMV 实际值 “abc” 无法识别为数字，已留空")
    expect(row).to_contain_text("12 万元")
    expect(row).to_contain_text("2024年7月15日 至 2024年8月15日")
    _fits(page, "import preview")

    # Playbooks: the index, then the form's picker.
    page.goto(f"{demo_url}/playbooks")
    expect(page.locator("h1")).to_have_text("打法")
    _fits(page, "playbooks")
    page.goto(f"{demo_url}/playbooks/new")
    picker = page.locator("#supporting_ids-picker")
    picker.fill("双")
    option = page.locator("#campaign-options option").first
    expect(option).to_have_count(1)
    label = option.get_attribute("value") or ""
    assert label.endswith(tuple(f"#{n}" for n in range(10))) or "#" in label
    picker.fill(label)
    picker.dispatch_event("input")
    chosen = page.locator("#supporting_ids-chosen li")
    expect(chosen).to_have_count(1)
    campaign_id = label.rsplit("#", 1)[1]
    expect(page.locator("#field-supporting_ids")).to_have_value(campaign_id)
    chosen.get_by_role("button", name="移除").first.click()
    expect(page.locator("#field-supporting_ids")).to_have_value("")
    _fits(page, "playbook form")

    page.goto(f"{demo_url}/lessons?q=叠券")
    expect(page.locator("#lessons-total")).to_contain_text("共")
    _fits(page, "lessons")

    for path in ("/trash", "/admin/audit"):
        page.goto(f"{demo_url}{path}")
        _fits(page, path)
    assert problems == []
    page.context.close()


def test_a_trashed_campaigns_link_offers_restore(browser: Browser, demo_url: str) -> None:
    page, problems = watched_page(browser, PHONE, demo_url, timeout_ms=15_000, allowed_status=410)
    page.goto(f"{demo_url}/campaigns/2")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("form[action$='/delete'] button").click()
    # Landed on the list with its notice (and its script loaded) before going on: a navigation
    # started while the list still loads cuts its requests off (net::ERR_ABORTED on app.js).
    expect(page).to_have_url(f"{demo_url}/campaigns")
    page.wait_for_load_state("networkidle")
    response = page.goto(f"{demo_url}/campaigns/2")
    assert response is not None
    assert response.status == 410
    expect(page.locator("h1")).to_have_text("已移入回收站")
    _fits(page, "trashed")
    page.get_by_role("button", name="恢复").click()
    expect(page).to_have_url(f"{demo_url}/campaigns/2")
    # The 410 itself is what was asked for; Chromium logs every error status of a document.
    assert [p for p in problems if "status of 410" not in p] == []
    page.context.close()
