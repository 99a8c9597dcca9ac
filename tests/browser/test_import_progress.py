"""The import progress page in a real browser: its script polls and opens the result."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from kb.transfer import jobs
from tests.browser.conftest import serving, sign_in
from tests.conftest import make_app
from tests.transfer.test_import_jobs import csv_rows

pytestmark = pytest.mark.browser


def test_the_progress_page_follows_the_job_to_its_result(
    tmp_path: Path,
    page: Page,
) -> None:
    # Left queued by the upload, as while the worker is busy; the test runs it as the worker would.
    app = make_app(tmp_path, None, WTF_CSRF_ENABLED=True, TESTING=False, IMPORT_INLINE=False)
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    with serving(app) as base_url:
        with app.app_context():
            job_id = jobs.enqueue(csv_rows(30), filename="rows.csv", fmt="csv").id
        sign_in(page, base_url, "editor", f"/import/jobs/{job_id}")
        expect(page.locator("#import-progress")).to_contain_text("排队中")
        with app.app_context():
            assert jobs.run_pending() == 1
        # No reload by the test: the page's script sees the job end and opens its result.
        expect(page.get_by_role("heading", name="导入完成")).to_be_visible()
        expect(page).to_have_url(f"{base_url}/import/jobs/{job_id}")
        expect(page.locator(".import-counts")).to_contain_text("新建 30")
    assert not [v for v in violations if "Content Security Policy" in v]
