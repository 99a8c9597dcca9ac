"""A live server on a real SQLite file and Debian's headless Chromium, driven by Playwright.

Every page needs a signed-in user, so a browser test serves its app with :func:`serving` (which
creates the test accounts of ``tests.signed_in``) and signs the browser in with :func:`sign_in`,
through the real login form: each browser test is also a test of signing in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright
from werkzeug.serving import make_server

from kb.demo import load_demo
from tests.conftest import make_app, release
from tests.signed_in import PASSWORD, ROLES, ensure_account

CHROMIUM = "/usr/bin/chromium"
# Chromium's background services try to reach Google; this machine has no such network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free local port with a test account per role; yield its base URL.

    Afterwards the app is closed (its index files and database connections released).
    """
    for role in ROLES:
        ensure_account(app, role)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        release(app)


def sign_in(page: Page, base_url: str, role: str = "admin", next_path: str = "") -> None:
    """Sign the browser in as ``test-<role>`` through the login form, then land on ``next_path``.

    Without ``next_path`` the app's default landing page (the home page) is expected.
    """
    login = f"{base_url}/login"
    if next_path:
        login += f"?next={quote(next_path)}"
    page.goto(login)
    page.fill("input[name=username]", f"test-{role}")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{base_url}{next_path or '/'}")
    expect(page.locator("input[name=password]")).to_have_count(0)
    # The landing page has finished loading (its favicon is fetched after the load event): a test
    # that goes on at once would cut its last requests off (net::ERR_ABORTED on favicon.svg).
    page.wait_for_load_state("networkidle")


def watched_page(
    browser: Browser,
    viewport: dict[str, int],
    base_url: str,
    *,
    role: str = "admin",
    timeout_ms: int = 10_000,
    allowed_status: int | None = None,
) -> tuple[Page, list[str]]:
    """Return a page signed in as ``role`` at this size, and the list its problems go to.

    Problems: console errors (with the script's address), uncaught page errors, failed requests
    and answers of 400 and above (except ``allowed_status``, a test's own expected error page).
    """
    context = browser.new_context(locale="zh-CN", viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"{m.text} ({m.location['url']})") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.status != allowed_status
            else None
        ),
    )
    sign_in(page, base_url, role=role)
    return page, problems


def record_dialogs(page: Page) -> list[str]:
    """Dismiss every dialog the page opens; return the list they are recorded in, as it grows."""
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    """Serve a fresh app (CSRF on, as in production) on a free local port; yield its base URL."""
    app = make_app(tmp_path, None, WTF_CSRF_ENABLED=True, TESTING=False)
    with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(10_000)
    browser_page = context.new_page()
    yield browser_page
    context.close()


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server on the demo campaigns (CSRF on, as in production), one per test module."""
    app = make_app(tmp_path_factory.mktemp("demo"), None, WTF_CSRF_ENABLED=True, TESTING=False)
    with app.app_context():
        assert not load_demo().rejected
    with serving(app) as url:
        yield url


def open_ok(page: Page, url: str) -> None:
    """Open ``url``, require a 200 and wait until the page's own requests are done."""
    response = page.goto(url)
    assert response is not None, url
    assert response.status == 200, url
    page.wait_for_load_state("networkidle")


def analyse_a_draft(page: Page, demo_url: str) -> None:
    """Fill the draft form with a members' win-back campaign and open its analysis."""
    open_ok(page, f"{demo_url}/drafts/new")
    page.fill("input[name=title]", "母婴会员日召回沉睡用户")
    page.fill("input[name=industry]", "母婴")
    page.select_option("select[name=goal_type]", index=1)
    page.fill("input[name=start_date]", "2026-12-20")
    page.fill("input[name=end_date]", "2026-12-31")
    page.fill("input[name=budget_cny]", "300000")
    page.fill("textarea[name=goal]", "召回 90 天未下单的沉睡用户，提升复购")
    page.fill("input[name=audience]", "沉睡用户、宝妈")
    page.fill("input[name=channels]", "短信、小程序")
    page.get_by_role("button", name="查看相似案例与冲突").click()
    page.wait_for_load_state("networkidle")
