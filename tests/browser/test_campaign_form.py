"""A planner fills the form in a real browser: an error, every input kept, fixed, saved, shown."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import record_dialogs, sign_in

pytestmark = pytest.mark.browser


def test_form_error_keeps_input_then_saves(page: Page, live_server: str) -> None:
    dialogs = record_dialogs(page)
    sign_in(page, live_server, role="editor", next_path="/campaigns/new")

    page.fill("input[name=title]", "沉睡会员召回 · 企微社群 + 满减券")
    page.fill("input[name=industry]", "生鲜")
    page.fill("input[name=department]", "会员运营中心")
    page.select_option("select[name=goal_type]", "reactivation")
    page.fill("input[name=start_date]", "2024-11-20")
    page.fill("input[name=end_date]", "2024-11-01")  # before the start: the error to fix
    page.fill("input[name=audience]", "沉睡用户、高价值会员")
    page.fill("textarea[name=lessons]", "分层发券比统一发券的核销率高 **18%**")

    metrics = page.locator("fieldset[data-section=metrics]")
    metrics.locator("input[name='metrics-0-name']").fill("核销率")
    metrics.locator("input[name='metrics-0-unit']").fill("%")
    metrics.locator("input[name='metrics-0-target']").fill("30")
    metrics.locator("input[name='metrics-0-actual']").fill("36")
    # A second metric row, added with the JavaScript "add a row" button.
    metrics.get_by_role("button", name="添加一行").click()
    metrics.locator("input[name='metrics-1-name']").fill("退货率")
    metrics.locator("input[name='metrics-1-baseline']").fill("4")
    metrics.locator("input[name='metrics-1-target']").fill("3")
    metrics.locator("input[name='metrics-1-actual']").fill("5")
    page.get_by_role("button", name="保存").click()

    expect(page.locator("#err-end_date")).to_have_text("结束日期不能早于开始日期")
    expect(page.locator("input[name=end_date]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("input[name=title]")).to_have_value("沉睡会员召回 · 企微社群 + 满减券")
    expect(page.locator("select[name=goal_type]")).to_have_value("reactivation")
    expect(page.locator("input[name=audience]")).to_have_value("沉睡用户、高价值会员")
    expect(page.locator("textarea[name=lessons]")).to_have_value(
        "分层发券比统一发券的核销率高 **18%**"
    )
    expect(page.locator("input[name='metrics-0-actual']")).to_have_value("36")
    expect(page.locator("input[name='metrics-1-name']")).to_have_value("退货率")
    expect(page.locator("input[name='metrics-1-actual']")).to_have_value("5")

    page.fill("input[name=end_date]", "2024-12-10")
    page.get_by_role("button", name="保存").click()

    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    expect(page.locator("h1")).to_have_text("沉睡会员召回 · 企微社群 + 满减券")
    expect(page.locator("tr.hit")).to_contain_text("核销率")
    expect(page.locator("tr.hit")).to_contain_text("120%")
    # 退货率 is lower-is-better: 5 against a target of 3 is a miss, and worse than baseline.
    expect(page.locator("tr.miss")).to_contain_text("退货率")
    expect(page.locator("tr.miss")).to_contain_text("变差 25%")
    expect(page.locator("figure.chart svg.chart-wide rect")).to_have_count(4)
    expect(page.locator("figure.chart svg.chart-narrow rect")).to_have_count(4)
    expect(page.locator(".markdown strong")).to_have_text("18%")
    assert dialogs == []
