"""The walk of December 8, 2026 on a phone (390×844): the trash and the analogs' comparison.

The trash was a five-column table scrolling in its box: 恢复 and 彻底删除 began past the screen's
right edge, so a planner who trashed a campaign by mistake saw no way back. The comparison of a
draft's target with its analogs' results cut off its 达成率 column, and split "800 万 / 元".
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import open_ok, watched_page
from tests.browser.test_phone_walk import PHONE, TAP_PX, _tables_cut_off

pytestmark = pytest.mark.browser


def test_phone_trash_shows_restore_on_screen(browser: Browser, demo_url: str) -> None:
    page, problems = watched_page(browser, PHONE, demo_url)
    page.on("dialog", lambda dialog: dialog.accept())  # 确定将该活动移入回收站？
    open_ok(page, f"{demo_url}/campaigns/3")
    page.get_by_role("button", name="移入回收站").click()
    page.wait_for_load_state("networkidle")
    open_ok(page, f"{demo_url}/trash")
    assert _tables_cut_off(page) == []
    for name in ("恢复", "彻底删除"):
        box = page.get_by_role("button", name=name).first.bounding_box()
        assert box is not None, name
        assert box["x"] >= 0, (name, box)
        assert box["x"] + box["width"] <= PHONE["width"], (name, box)
    page.get_by_role("button", name="恢复").first.click()
    page.wait_for_load_state("networkidle")
    assert "已恢复" in page.inner_text("main")
    assert problems == []


def test_phone_analog_comparison_shows_every_column(browser: Browser, demo_url: str) -> None:
    page, problems = watched_page(browser, PHONE, demo_url)
    checked = 0
    for campaign_id in range(40, 56):  # the demo's later campaigns forecast from analogs
        open_ok(page, f"{demo_url}/campaigns/{campaign_id}")
        tables = page.locator("table.compare")
        if not tables.count():
            continue
        checked += 1
        assert _tables_cut_off(page, "table.compare") == [], campaign_id
        # Every value stays on one line: no "800 万" above its "元". A cell is its column's name
        # over its value, ≈ 43 px; a value split in two makes it ≈ 62.
        cells = tables.first.locator("td[data-label]")
        for i in range(cells.count()):
            box = cells.nth(i).bounding_box()
            assert box is not None
            assert box["height"] < 52, (campaign_id, cells.nth(i).inner_text())
    assert checked, "no demo campaign showed the analogs' comparison"
    assert problems == []


@pytest.mark.parametrize(
    ("path", "link"),
    [
        ("/campaigns/999999", "返回活动列表"),  # the 404 page's only way on
        ("/portfolio", "今年"),
        ("/campaigns/1/history", None),  # the campaign's title above its history
    ],
)
def test_phone_page_links_that_lead_on_are_taps(
    browser: Browser, demo_url: str, path: str, link: str | None
) -> None:
    page, _ = watched_page(browser, PHONE, demo_url, allowed_status=404)
    page.goto(f"{demo_url}{path}")
    page.wait_for_load_state("networkidle")
    targets = page.locator("a.tap") if link is None else page.get_by_role("link", name=link)
    box = targets.first.bounding_box()
    assert box is not None
    assert box["height"] >= TAP_PX, (path, box)
