"""The campaign form in a real browser, on a phone and a desktop, typed as a Chinese team types:
50万, 1.2亿, 2025/12/1, 2025年12月1日; a date without its year is asked for in Chinese with every
other input kept; an unknown metric name reads 未归类 and is mapped to the catalog in one click."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import sign_in
from tests.browser.test_layout import DESKTOP, PHONE, _contrast_violations, _overflow

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_chinese_amounts_and_dates_errors_and_catalog_mapping(
    browser: Browser, live_server: str, viewport: dict[str, int]
) -> None:
    context = browser.new_context(locale="zh-CN", viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    sign_in(page, live_server, role="editor", next_path="/campaigns/new")

    page.fill("input[name=title]", "年货节 · 直播间满减")
    page.fill("input[name=industry]", "电商")
    page.fill("input[name=department]", "直播运营部")
    page.select_option("select[name=goal_type]", "gmv")
    page.fill("input[name=start_date]", "2025/12/1")
    page.fill("input[name=end_date]", "12月20日")  # no year: asked for
    page.fill("input[name=budget_cny]", "50万")
    metrics = page.locator("fieldset[data-section=metrics]")
    metrics.locator("input[name='metrics-0-name']").fill("成交金额")  # not in the catalog
    metrics.locator("input[name='metrics-0-unit']").fill("万元")
    metrics.locator("input[name='metrics-0-target']").fill("1.2亿")
    metrics.locator("input[name='metrics-0-actual']").fill("13,500")
    page.get_by_role("button", name="保存").click()

    expect(page.locator("#err-end_date")).to_contain_text("请写上年份，如")
    expect(page.locator(".error-summary")).to_contain_text("结束日期：请写上年份")
    expect(page.locator("input[name=end_date]")).to_have_value("12月20日")
    expect(page.locator("input[name=budget_cny]")).to_have_value("50万")
    expect(page.locator("input[name='metrics-0-target']")).to_have_value("1.2亿")
    # Shown again: the one filled metric row and one blank row, no more, in every list.
    rows = {"metrics": 2, "rewards": 1, "hypotheses": 1, "documents": 1}
    for section, count in rows.items():
        expect(page.locator(f"fieldset[data-section={section}] .row-list > .row")).to_have_count(
            count
        )
    note = page.locator(".unclassified")
    expect(note).to_contain_text("未归类")
    expect(note).to_contain_text("不会与其他活动的同类指标比较")
    assert _overflow(page)["scroll"] <= viewport["width"]
    assert _contrast_violations(page) == []

    note.get_by_role("button", name="归为 GMV").click()
    expect(page.locator("input[name='metrics-0-name']")).to_have_value("GMV")
    expect(page.locator(".unclassified")).to_have_count(0)
    expect(page.locator("input[name=end_date]")).to_have_value("12月20日")  # still as typed
    for section, count in rows.items():  # and again after a second round trip
        expect(page.locator(f"fieldset[data-section={section}] .row-list > .row")).to_have_count(
            count
        )

    page.fill("input[name=end_date]", "2025年12月20日")
    page.get_by_role("button", name="保存").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    expect(page.locator("main")).to_contain_text("50 万元")
    expect(page.locator("main")).to_contain_text("2025年12月1日")
    expect(page.locator("main")).to_contain_text("1.2 亿元")  # 12000 万元, written in 亿
    # The form with errors is answered 422 on purpose; Chromium logs that as a failed load.
    assert [p for p in problems if "422" not in p] == []
    context.close()
