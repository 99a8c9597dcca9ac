"""The search page in a real browser, on a phone and a desktop: the metric-condition form (metric →
实际值/达成率/较基线 → comparison → value), removable filter chips, selected facets, numbered pages,
an h1, and the empty state of a reversed date range; errors keep the input and the panel open."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from playwright.sync_api import Browser, Page, expect

from kb.demo import load_demo
from tests.browser.conftest import serving, watched_page
from tests.browser.test_layout import DESKTOP, PHONE, _contrast_violations, _overflow
from tests.conftest import make_app

pytestmark = pytest.mark.browser
SIZES = pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = make_app(tmp_path_factory.mktemp("search"), None, WTF_CSRF_ENABLED=True, TESTING=False)
    with app.app_context():
        assert not load_demo().rejected
    with serving(app) as url:
        yield url


def _fits(page: Page) -> None:
    overflow = _overflow(page)
    assert overflow["scroll"] <= overflow["width"], overflow


@SIZES
def test_metric_condition_form_chips_and_errors(
    browser: Browser, demo_url: str, viewport: dict[str, int]
) -> None:
    page, problems = watched_page(browser, viewport, demo_url, role="viewer")
    page.goto(f"{demo_url}/search?q=直播")
    expect(page.locator("h1")).to_have_text("搜索：“直播”")
    page.locator("details.more-filters > summary").click()

    # A value that is no number: said in Chinese beside the form, every box keeps its input and
    # the panel stays open.
    page.select_option("select[name=mf_metric]", label="ROI")
    page.select_option("select[name=mf_op]", label="≥")
    page.fill("input[name=mf_value]", "很多")
    page.get_by_role("button", name="加上条件").click()
    expect(page.locator("#err-mf")).to_contain_text("不是数字")
    expect(page.locator("details.more-filters")).to_have_attribute("open", "")
    expect(page.locator("select[name=mf_metric]")).to_have_value("roi")
    expect(page.locator("select[name=mf_op]")).to_have_value(">=")
    expect(page.locator("input[name=mf_value]")).to_have_value("很多")
    _fits(page)

    # Fixed: one condition in the URL, shown as a chip in words.
    page.fill("input[name=mf_value]", "2")
    page.get_by_role("button", name="加上条件").click()
    page.wait_for_url(lambda url: "metric_range=roi.actual>=2" in unquote(url))
    assert "mf_value" not in page.url  # the form's boxes became the one condition
    chip = page.locator(".active-filters .filter-chip", has_text="ROI 实际值 ≥ 2")
    expect(chip).to_be_visible()

    # "ROI ≥ 2" typed as people write it works too; a second condition.
    # The panel is closed once the condition applies: the chips say what is set, results come first.
    expect(page.locator("details.more-filters")).not_to_have_attribute("open", "")
    page.locator("details.more-filters > summary").click()
    page.fill("input[name=metric_range]:not([type=hidden])", "GMV 达成率 < 90%")
    page.locator("input[name=metric_range]:not([type=hidden])").press("Enter")
    expect(page.locator(".filter-chip", has_text="GMV 达成率 ＜ 90%")).to_be_visible()
    expect(chip).to_be_visible()
    assert _contrast_violations(page) == []
    _fits(page)

    # One click on × removes that condition alone.
    chip.get_by_role("link").click()
    expect(page.locator(".filter-chip", has_text="ROI 实际值 ≥ 2")).to_have_count(0)
    expect(page.locator(".filter-chip", has_text="GMV 达成率 ＜ 90%")).to_be_visible()
    assert problems == []
    page.context.close()


@SIZES
def test_facets_show_their_state_and_pages_are_numbered(
    browser: Browser, demo_url: str, viewport: dict[str, int]
) -> None:
    page, problems = watched_page(browser, viewport, demo_url, role="viewer")
    page.goto(f"{demo_url}/search?status=completed&limit=5")
    expect(page.locator("h1")).to_have_text("搜索活动复盘")
    pager = page.get_by_role("navigation", name="翻页")
    expect(pager.locator("[aria-current=page]")).to_have_text("1")
    pager.get_by_role("link", name="2", exact=True).click()
    expect(pager.locator("[aria-current=page]")).to_have_text("2")
    expect(pager.get_by_role("link", name="上一页")).to_be_visible()

    facet = page.locator(".facets section", has_text="行业").locator("li").first
    name = facet.locator("a").inner_text().strip()
    facet.locator("a").click()
    selected = page.locator(".facets li.selected a", has_text=name)
    expect(selected).to_have_attribute("aria-current", "true")
    expect(page.locator(".filter-chip", has_text=f"行业：{name}")).to_be_visible()
    selected.click()  # clicking a selected facet removes it
    expect(page.locator(".filter-chip", has_text=f"行业：{name}")).to_have_count(0)
    _fits(page)
    assert problems == []
    page.context.close()


def test_a_reversed_date_range_is_named_not_the_query(browser: Browser, demo_url: str) -> None:
    page, problems = watched_page(browser, PHONE, demo_url, role="viewer")
    page.goto(f"{demo_url}/search?q=召回&date_from=2025年12月1日&date_to=2025/1/1")
    empty = page.locator(".results .empty")
    expect(empty).to_contain_text("起始日期（2025年12月1日）晚于截止日期（2025年1月1日）")
    expect(empty).not_to_contain_text("换个说法")
    expect(page.locator(".filter-chip", has_text="2025年12月1日 起")).to_be_visible()
    _fits(page)
    assert problems == []
    page.context.close()
