"""Every page works in a real browser under the Content-Security-Policy, with nothing blocked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import ConsoleMessage, Page, expect

from kb.web import security
from tests.browser.conftest import serving, sign_in
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
    public_pages: list[str]  # every HTML page served at GET to an anonymous visitor
    pages: list[str]  # every HTML page served at GET to a signed-in admin


# The one campaign (edited once: two versions) and the one playbook stand in for every id.
PATH_ARGUMENTS = {"campaign_id": "1", "version": "2", "playbook_id": "1"}


def html_pages(client: FlaskClient) -> list[str]:
    """Return the path of every GET page answering HTML to this client's user."""
    # Pages no rule alone names: a search with results, and the first version (no diff).
    extra = ["/search?q=召回", "/campaigns/1/history/1"]
    pages = [path for path in extra if client.get(path).status_code == 200]
    for rule in client.application.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.rule.startswith(("/api/", "/static/")):
            continue
        if set(rule.arguments) - set(PATH_ARGUMENTS):
            continue
        path = rule.rule
        for name, value in PATH_ARGUMENTS.items():
            path = path.replace(f"<int:{name}>", value)
        response = client.get(path)
        if response.status_code == 200 and response.mimetype == "text/html":
            pages.append(path)
    return sorted(set(pages))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A live server (CSRF on) with one campaign with metrics, edited once, and one playbook."""
    app = make_app(tmp_path_factory.mktemp("csp"), None, WTF_CSRF_ENABLED=True, TESTING=False)
    if security.EXTENSION not in app.extensions:
        security.init_app(app)
    client = app.test_client()  # signed in as an admin, with a bearer token for the API
    # The API is exempt from CSRF, so the test client can post without a token.
    assert client.post("/api/v1/campaigns", json=campaign_payload()).status_code == 201
    edit = campaign_payload(lessons="连续订购立减 比 限时优惠 对复购的拉动高 30%", version=1)
    assert client.put("/api/v1/campaigns/1", json=edit).status_code == 200
    playbook = {"title": "沉睡会员召回打法", "body": "- 先分层\n- 再发券", "theme": "reward"}
    assert client.post("/api/v1/playbooks", json=playbook).status_code == 201
    public_pages = html_pages(app.test_client(role=None))
    pages = html_pages(client)
    with serving(app) as url:
        yield Site(url=url, public_pages=public_pages, pages=pages)


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
    assert site.public_pages == ["/login"]
    expected = {
        "/account",
        "/admin/audit",
        "/admin/settings",
        "/admin/tokens",
        "/admin/users",
        "/campaigns",
        "/campaigns/1",
        "/campaigns/1/edit",
        "/campaigns/1/history",
        "/campaigns/1/history/1",
        "/campaigns/1/history/2",
        "/campaigns/1/print",
        "/campaigns/new",
        "/drafts/new",
        "/lessons",
        "/playbooks/1",
        "/playbooks/1/edit",
        "/portfolio",
        "/search?q=召回",
        "/trash",
    }
    assert expected <= set(site.pages), site.pages
    _check_pages(page, problems, site.url, site.public_pages)
    sign_in(page, site.url)  # the login form itself, submitted under the policy
    assert (violations(page), problems) == ([], [])
    _check_pages(page, problems, site.url, site.pages)


def _check_pages(page: Page, problems: list[str], base_url: str, paths: list[str]) -> None:
    for path in paths:
        response = page.goto(f"{base_url}{path}")
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
    sign_in(page, site.url, role="editor", next_path="/campaigns/new")
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
    sign_in(page, site.url, role="viewer")
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
