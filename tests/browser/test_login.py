"""Signing in and out in a real browser: the redirect to the login form and back, a wrong
password, the role's pages, and signing out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.signed_in import PASSWORD

pytestmark = pytest.mark.browser


def test_sign_in_returns_to_the_page_asked_for_then_sign_out(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/trash")
    expect(page).to_have_url(f"{live_server}/login?next=/trash")

    page.fill("input[name=username]", "test-editor")
    page.fill("input[name=password]", "not-the-password")
    with page.expect_response(re.compile(r"/login")) as answer:
        page.get_by_role("button", name="登录").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")
    expect(page.locator("input[name=username]")).to_have_value("test-editor")

    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{live_server}/trash")
    account = page.locator(".topbar .account")
    expect(account).to_contain_text("test-editor")
    # An editor sees the editing links, not the admin pages.
    expect(page.locator(".topbar nav")).to_contain_text("新建复盘")
    expect(page.locator(".topbar nav")).not_to_contain_text("管理")

    account.get_by_role("button", name="退出").click()
    expect(page).to_have_url(f"{live_server}/login")
    page.goto(f"{live_server}/campaigns")
    expect(page).to_have_url(f"{live_server}/login?next=/campaigns")


def test_a_viewer_reads_but_cannot_edit(page: Page, live_server: str) -> None:
    sign_in(page, live_server, role="viewer")
    expect(page.locator(".topbar nav")).not_to_contain_text("新建复盘")
    response = page.goto(f"{live_server}/campaigns/new")
    assert response is not None
    assert response.status == 403
