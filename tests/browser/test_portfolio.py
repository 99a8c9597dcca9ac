"""The portfolio in a real browser: the charts draw (bundled Chart.js, nothing fetched from
elsewhere) and the table beside each chart shows the numbers the API gives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from flask import Flask, Response
from playwright.sync_api import Page

from kb.demo import load_demo
from kb.insights import views as insights
from kb.web.rendering import format_cny, format_date, format_pct
from tests.browser.conftest import serving, sign_in
from tests.conftest import make_app

pytestmark = pytest.mark.browser

PERIOD = "date_from=2025-01-01&date_to=2025-12-31"
# The app's policy: no inline script or style, nothing from elsewhere.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'"
)
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""
CHARTS = ("chart-goals", "chart-budget", "chart-timeline", "chart-crowding")


def _register(app: Flask) -> None:
    # Only when create_app does not register them (yet).
    if "insights" not in app.blueprints:
        app.register_blueprint(insights.bp)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flask]]:
    """A live server on the demo data (CSRF on, as in production)."""
    app = make_app(tmp_path_factory.mktemp("portfolio"), None, WTF_CSRF_ENABLED=True, TESTING=False)
    _register(app)

    @app.after_request
    def _strict_policy(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", STRICT_CSP)
        return response

    with app.app_context():
        assert not load_demo().rejected
    with serving(app) as url:
        yield url, app


def _zh_date(iso: str) -> str:
    return format_date(date.fromisoformat(iso))


def _painted_pixels(page: Page, canvas_id: str) -> int:
    """Count the canvas pixels that are not fully transparent."""
    count: int = page.evaluate(
        """(id) => {
            const canvas = document.getElementById(id);
            const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
            return painted;
        }""",
        canvas_id,
    )
    return count


def _cells(page: Page, selector: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        selector,
        "rows => rows.map(r => [...r.querySelectorAll('th, td')].map(c => c.innerText.trim()))",
    )
    return rows


def test_portfolio_charts_render_and_tables_match_the_api(
    page: Page, demo_server: tuple[str, Flask]
) -> None:
    base, app = demo_server
    api: dict[str, Any] = app.test_client().get(f"/api/v1/portfolio?{PERIOD}").get_json()
    foreign: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base) else foreign.append(r.url))
    failed: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A failed load is checked by URL below (the browser's own /favicon.ico probe may 404).
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)

    page.add_init_script(RECORD_VIOLATIONS)
    sign_in(page, base, role="viewer")
    response = page.goto(f"{base}/portfolio?{PERIOD}")
    assert response is not None
    assert "style-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_function("document.documentElement.dataset.chartsReady === 'true'")
    assert page.evaluate("window.__cspViolations") == []  # charts draw under the strict CSP
    assert errors == []
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []
    assert foreign == []  # works offline: nothing from a CDN

    for canvas_id in CHARTS:
        box = page.locator(f"#{canvas_id}").bounding_box()
        assert box is not None, canvas_id
        assert box["width"] > 200, canvas_id
        assert box["height"] > 150, canvas_id
        assert _painted_pixels(page, canvas_id) > 2000, canvas_id

    # By goal type: counts, hit shares and medians as the API computed them.
    goals = {g["goal_type"]: g for g in [*api["goals"], {**api["total"], "goal_type": "total"}]}
    rows = page.eval_on_selector_all(
        "#table-goals tbody tr",
        """rows => rows.map(r => ({
            goal: r.dataset.goal,
            campaigns: r.querySelector('[data-col=campaigns]').innerText.trim(),
            budget: r.querySelector('[data-col=budget]').innerText.trim(),
            hit_share: r.querySelector('[data-col=hit_share]').innerText.trim(),
            median: r.querySelector('[data-col=median]').innerText.trim(),
        }))""",
    )
    assert [r["goal"] for r in rows] == [*[g["goal_type"] for g in api["goals"]], "total"]
    for row in rows:
        expected = goals[row["goal"]]
        assert row["campaigns"] == str(expected["campaigns"])
        assert row["budget"].startswith(format_cny(expected["budget_cny"]))
        assert (
            row["hit_share"]
            == f"{format_pct(expected['hit_share_pct'])} {expected['hit']}/{expected['judged']}"
        )
        assert row["median"] == format_pct(expected["median_attainment_pct"])

    # Timeline: one row per campaign, in the API's order, with its dates.
    timeline = page.eval_on_selector_all(
        "#table-timeline tbody tr",
        "rows => rows.map(r => [Number(r.dataset.id), r.querySelector('[data-col=dates]').innerText])",
    )
    assert timeline == [
        [c["id"], f"{_zh_date(c['start_date'])} 至 {_zh_date(c['end_date'])}"]
        for c in api["campaigns"]
    ]

    # Heat map: segment by month counts.
    heat = _cells(page, "#table-crowding tbody tr")
    crowding = api["crowding"]
    assert heat == [
        [segment, *map(str, counts)]
        for segment, counts in zip(crowding["segments"], crowding["counts"], strict=True)
    ]
    header = _cells(page, "#table-crowding thead tr")[0]
    assert header[1:] == crowding["months"]

    uncovered = page.eval_on_selector_all(
        "#uncovered-list .chip", "chips => chips.map(c => c.innerText)"
    )
    assert uncovered == api["uncovered_segments"]


def test_portfolio_tables_work_without_javascript(
    browser: Any, demo_server: tuple[str, Flask]
) -> None:
    base, _ = demo_server
    context = browser.new_context(java_script_enabled=False, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, role="viewer")  # the login form works without JavaScript too
    page.goto(f"{base}/portfolio?{PERIOD}")
    assert page.locator("#table-goals tbody tr").count() >= 2
    assert page.locator("#table-timeline tbody tr").count() > 5
    context.close()
