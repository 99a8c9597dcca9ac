"""A planner's walk on a phone (390×844), on the demo data: what the walk of December 2026 found.

Tables a planner reads row by row (the campaign list, a campaign's metrics, an import's rows, a
campaign's history, the admin's users and audit log) are one card per row on a phone, every value
on screen without scrolling the table sideways; buttons and fields are at least 40 px high; the
printable page fits the phone's width. On a desktop the same tables stay tables.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import open_ok, watched_page

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "campaigns_main.csv"
# Pages with a table a planner reads row by row (each has class "stack").
TABLE_PAGES = ["/campaigns", "/campaigns/1", "/campaigns/1/history", "/admin/users", "/admin/audit"]
# The smallest tap target a phone should get (Apple asks 44 pt, Material 48 dp; 40 px is the floor
# the walk held the pages to).
TAP_PX = 40


def _tables_cut_off(page: Page, selector: str = "main table") -> list[str]:
    """Return the tables that scroll sideways, or have a cell past the screen's edge."""
    cut: list[str] = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].flatMap((t) => {
            const out = [];
            if (t.scrollWidth > t.clientWidth + 1)
                out.push(`${t.className}: ${t.scrollWidth} > ${t.clientWidth}`);
            for (const td of t.querySelectorAll("td")) {
                const r = td.getBoundingClientRect();
                if (r.width > 0 && r.right > window.innerWidth + 1) {
                    out.push(`${t.className}: ${td.textContent.trim().slice(0, 20)} ends at ${r.right}`);
                    break;
                }
            }
            return out;
        })""",
        selector,
    )
    return cut


def test_phone_tables_read_as_cards_without_sideways_scrolling(
    browser: Browser, demo_url: str
) -> None:
    page, problems = watched_page(browser, PHONE, demo_url)
    for path in TABLE_PAGES:
        open_ok(page, f"{demo_url}{path}")
        assert _tables_cut_off(page) == [], path
        assert page.locator("main table.stack").count() >= 1, path
    assert problems == []


def test_phone_metric_shows_its_attainment_under_its_name(browser: Browser, demo_url: str) -> None:
    page, problems = watched_page(browser, PHONE, demo_url)
    open_ok(page, f"{demo_url}/campaigns/1")
    attain = page.locator("table.metrics td.attain").first
    expect(attain).to_be_visible()
    # Within the screen's width as the page opens (no sideways scrolling of the table to find it).
    box = attain.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    # The column's name is shown with the value (the header row is out of sight on a phone).
    label = attain.evaluate("(e) => getComputedStyle(e, '::before').content")
    assert label == '"达成率"'
    assert problems == []


def test_phone_import_preview_keeps_dates_on_one_line(browser: Browser, demo_url: str) -> None:
    page, problems = watched_page(browser, PHONE, demo_url)
    open_ok(page, f"{demo_url}/import")
    page.set_input_files("input[name=file]", str(SAMPLE))
    page.get_by_role("button", name="上传并预览").click()
    expect(page.get_by_role("heading", name="导入预览")).to_be_visible()
    page.wait_for_load_state("networkidle")
    dates = page.locator(".read-values-list dt", has_text="日期").first.locator(
        "xpath=following-sibling::dd[1]"
    )
    expect(dates).to_contain_text("至")
    # "2024年7月1日 至 2024年8月31日": at most two lines (it took one character a line, ~25 lines).
    lines = dates.evaluate(
        "(e) => Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight))"
    )
    assert lines <= 2
    assert _tables_cut_off(page) == []
    assert problems == []


def test_phone_portfolio_tables_and_timeline_fit(browser: Browser, demo_url: str) -> None:
    page, problems = watched_page(browser, PHONE, demo_url)
    open_ok(page, f"{demo_url}/portfolio?date_from=2025-01-01&date_to=2026-12-31")
    # The goal and timeline tables read as cards (the 人群 × 月份 matrix keeps its own scroll box).
    assert _tables_cut_off(page, "#table-goals, #table-timeline") == []
    # The timeline chart: every campaign's name starts inside the canvas, month ticks do not overlap.
    clash: list[str] = page.evaluate(
        """() => {
            const chart = Chart.getChart(document.getElementById("chart-timeline"));
            const ctx = chart.ctx, out = [];
            const y = chart.scales.y, x = chart.scales.x;
            ctx.font = Chart.helpers.toFont(y.options.ticks.font).string;
            for (const label of y.getLabels())
                if (ctx.measureText(label).width > y.right) out.push(`name cut: ${label}`);
            ctx.font = Chart.helpers.toFont(x.options.ticks.font).string;
            const ticks = x.ticks.map((t) => [x.getPixelForValue(t.value),
                ctx.measureText(x.options.ticks.callback(t.value)).width]);
            for (let i = 1; i < ticks.length; i++)
                if (ticks[i][0] - ticks[i - 1][0] < (ticks[i][1] + ticks[i - 1][1]) / 2)
                    out.push(`ticks overlap at ${i}`);
            return out;
        }"""
    )
    assert clash == []
    assert problems == []


def _small_targets(page: Page) -> list[str]:
    """Return the visible buttons, fields, selects and check box labels lower than TAP_PX."""
    small: list[str] = page.evaluate(
        """(px) => [...document.querySelectorAll(
                "button, .button, select, label.check, .form-actions > a, "
                + "input:not([type=hidden]):not([type=checkbox]):not([type=radio])")]
            .filter((e) => e.offsetParent !== null)
            .map((e) => [e, e.getBoundingClientRect()])
            .filter(([e, r]) => r.height > 0 && r.height < px)
            .map(([e, r]) => `${e.tagName}.${e.className} "${(e.textContent || e.name).trim()}" ${r.height}`)""",
        TAP_PX,
    )
    return small


@pytest.mark.parametrize(
    "path", ["/", "/campaigns", "/campaigns/1", "/campaigns/new", "/import", "/admin/users"]
)
def test_phone_tap_targets_are_at_least_40_px(browser: Browser, demo_url: str, path: str) -> None:
    page, problems = watched_page(browser, PHONE, demo_url)
    open_ok(page, f"{demo_url}{path}")
    assert _small_targets(page) == []
    assert problems == []


def test_phone_print_page_fits_the_width(browser: Browser, demo_url: str) -> None:
    page, problems = watched_page(browser, PHONE, demo_url)
    open_ok(page, f"{demo_url}/campaigns/1/print")
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll <= PHONE["width"]
    assert problems == []


def test_desktop_keeps_the_tables_as_tables(browser: Browser, demo_url: str) -> None:
    page, problems = watched_page(browser, DESKTOP, demo_url)
    for path in TABLE_PAGES:
        open_ok(page, f"{demo_url}{path}")
        table = page.locator("main table.stack").first
        expect(table.locator("thead th").first).to_be_visible()
        assert (
            table.evaluate("(t) => getComputedStyle(t.querySelector('td')).display") == "table-cell"
        )
        assert (
            table.evaluate("(t) => getComputedStyle(t.querySelector('td'), '::before').content")
            == "none"
        )
    assert problems == []
