"""Every tap target of the main pages on a phone (390×844, demo data) is at least 40 px high.

The earlier walks (tests/browser/test_phone_walk*.py) held chosen selectors to 40 px: buttons,
fields, some links. This one takes every visible thing a planner can tap on each main page: links,
buttons, fields, selects, a <details>' summary and the label of a check box (the box itself is a
13 px square: its label is what a thumb hits). Exempt are links inside running text, a sentence
with a link in it ("共 3 条，<a>查看全部</a>"): a 40 px line box would tear the paragraph apart, and
WCAG 2.5.8 exempts them for that reason. A link is "inside running text" when its parent holds
text of its own beside it.

On a desktop (1366×900) the same pages must not scroll sideways (the bigger targets must not push
the layout wider than the window).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import analyse_a_draft, open_ok, watched_page

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
TAP_PX = 40  # the floor of tests/browser/test_phone_walk.py (Apple asks 44 pt, Material 48 dp)
PAGES = [
    "/",
    "/search?q=直播",
    "/search?q=GMV 超过 50万",
    "/campaigns/1",
    "/campaigns/1/similar",
    "/campaigns/new",
    "/drafts/new",
    "/campaigns",
    "/portfolio",
    "/import",
    "/lessons",
]
_OPEN_EVERY_DETAILS = (
    "() => document.querySelectorAll('details').forEach((d) => { d.open = true; })"
)

# Returns the targets lower than the floor: `parent.class > tag.class "text" WxH`.
_SMALL_TARGETS = """(px) => {
    const inRunningText = (e) => {
        if (e.tagName !== "A") return false;
        const parent = e.parentElement;
        return [...parent.childNodes].some(
            (n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim() !== "");
    };
    const checkLabels = [...document.querySelectorAll("label")].filter((l) => {
        const box = l.control;
        return box && (box.type === "checkbox" || box.type === "radio");
    });
    const targets = [...document.querySelectorAll(
        "a[href], button, select, textarea, summary, "
        + "input:not([type=hidden]):not([type=checkbox]):not([type=radio])"), ...checkLabels];
    return targets
        .filter((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden")
        .filter((e) => !inRunningText(e))
        .map((e) => [e, e.getBoundingClientRect()])
        .filter(([e, r]) => r.width > 1 && r.height < px)
        .map(([e, r]) => `${e.parentElement.tagName.toLowerCase()}.${e.parentElement.className} > `
            + `${e.tagName.toLowerCase()}.${e.className} `
            + `"${(e.textContent || e.name || "").trim().replace(/\\s+/g, " ").slice(0, 20)}" `
            + `${Math.round(r.width)}x${Math.round(r.height)}`);
}"""


def small_targets(page: Page) -> list[str]:
    """Return the visible tap targets of the page lower than TAP_PX, with their size."""
    small: list[str] = page.evaluate(_SMALL_TARGETS, TAP_PX)
    return small


@pytest.mark.parametrize("path", PAGES)
def test_every_tap_target_is_40_px_high_on_a_phone(
    browser: Browser, demo_url: str, path: str
) -> None:
    page, problems = watched_page(browser, PHONE, demo_url)
    open_ok(page, f"{demo_url}{path}")
    _assert_every_target_tappable(page)
    assert problems == []
    page.context.close()


def _assert_every_target_tappable(page: Page) -> None:
    """Check the page as it opens, with every <details> (filters, more…) open, and its menu open."""
    assert small_targets(page) == []
    page.evaluate(_OPEN_EVERY_DETAILS)
    assert small_targets(page) == []
    page.locator(".menu-toggle").click()
    expect(page.locator("#site-menu")).to_be_visible()
    assert small_targets(page) == []


def test_every_tap_target_of_a_draft_analysis_is_40_px_high(
    browser: Browser, demo_url: str
) -> None:
    # The analysis of a draft (similar cases, collisions, forecast) is the page a planner taps most.
    page, problems = watched_page(browser, PHONE, demo_url)
    analyse_a_draft(page, demo_url)
    expect(page.locator("#similar-cases .case").first).to_be_visible()
    _assert_every_target_tappable(page)
    assert problems == []
    page.context.close()


@pytest.mark.parametrize("path", PAGES)
def test_desktop_pages_do_not_scroll_sideways(browser: Browser, demo_url: str, path: str) -> None:
    page, problems = watched_page(browser, DESKTOP, demo_url)
    open_ok(page, f"{demo_url}{path}")
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= DESKTOP["width"], path
    assert problems == []
    page.context.close()
