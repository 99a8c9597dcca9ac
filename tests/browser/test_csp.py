"""Every page works in a real browser under the Content-Security-Policy, with nothing blocked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import ConsoleMessage, Page, expect
from werkzeug.serving import make_server

from kb import security
from tests.conftest import make_app
from tests.factories import campaign_payload

pytestmark = pytest.mark.browser

# Installed before any page script: records what the policy blocks.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@dataclass(frozen=True)
class Site:
    url: str
    pages: list[str]  # every HTML page the app serves at GET


def html_pages(app: Flask) -> list[str]:
    """Return the path of every GET page answering HTML (campaign 1 for campaign pages)."""
    client = app.test_client()
    pages = ["/search?q=召回"]
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.rule.startswith(("/api/", "/static/")):
            continue
        if set(rule.arguments) - {"campaign_id"}:
            continue
        path = rule.rule.replace("<int:campaign_id>", "1")
        response = client.get(path)
        if response.status_code == 200 and response.mimetype == "text/html":
            pages.append(path)
    return sorted(set(pages))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A live server with kb.security registered (CSRF on) and one campaign with metrics."""
    app = make_app(tmp_path, None, WTF_CSRF_ENABLED=True, TESTING=False)
    if security.EXTENSION not in app.extensions:
        security.init_app(app)
    client = app.test_client()
    # The API is exempt from CSRF, so the test client can post without a token.
    assert client.post("/api/v1/campaigns", json=campaign_payload()).status_code == 201
    pages = html_pages(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(url=f"http://127.0.0.1:{server.server_port}", pages=pages)
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def watched(page: Page) -> tuple[Page, list[str]]:
    """The page, recording CSP violations and console errors in the returned list."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The app has no favicon; Chromium asks for one and logs the 404 as an error.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(f"console: {message.text}")

    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return page, problems


def violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("() => window.__cspViolations")
    return found


def test_every_page_runs_under_the_policy(watched: tuple[Page, list[str]], site: Site) -> None:
    page, problems = watched
    expected = {"/campaigns", "/campaigns/1", "/campaigns/1/edit", "/campaigns/new", "/trash"}
    assert expected <= set(site.pages), site.pages
    for path in site.pages:
        response = page.goto(f"{site.url}{path}")
        assert response is not None
        assert response.status == 200, path
        assert response.headers["content-security-policy"] == security.CONTENT_SECURITY_POLICY
        page.wait_for_load_state("load")
        assert (path, violations(page)) == (path, [])
        assert (path, problems) == (path, [])


def test_form_add_row_button_works_under_the_policy(
    watched: tuple[Page, list[str]], site: Site
) -> None:
    page, problems = watched
    page.goto(f"{site.url}/campaigns/new")
    metrics = page.locator("fieldset[data-section=metrics]")
    expect(metrics.locator("input[name='metrics-1-name']")).to_have_count(0)
    metrics.get_by_role("button", name="添加一行").click()
    expect(metrics.locator("input[name='metrics-1-name']")).to_be_visible()
    expect(metrics.locator("input[name='metrics-1-name']")).to_be_focused()
    assert violations(page) == []
    assert problems == []


def test_the_detector_sees_a_blocked_inline_script(
    watched: tuple[Page, list[str]], site: Site
) -> None:
    # Without this check a broken listener would let every test above pass.
    page, problems = watched
    page.goto(f"{site.url}/campaigns")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__inlineRan = true";
          document.body.appendChild(script);
        }"""
    )
    page.wait_for_function("() => window.__cspViolations.length > 0")
    assert page.evaluate("() => window.__inlineRan === undefined")
    assert any(v.startswith("script-src") for v in violations(page))
    assert any("Content Security Policy" in p for p in problems)
