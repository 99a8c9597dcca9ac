"""Take the screens in this folder: home, campaign and draft pages at 390×844 and 1440×900.

Run from the repository root: ``.venv/bin/python docs/screens/make_screens.py``. It serves a fresh
app on the demo campaigns and signs in as an editor; the pages need a CJK font on the machine
taking the screens (Debian: ``apt-get install fonts-noto-cjk``), never one shipped by the app.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kb.demo import load_demo  # noqa: E402  # after the repository is on the path
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, serving, sign_in  # noqa: E402
from tests.conftest import make_app  # noqa: E402

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}
PAGES = {"home": "/", "campaign": "/campaigns/1", "draft": "/drafts/new"}


def main() -> None:
    """Write <page>-<size>.png next to this file."""
    app = make_app(Path(tempfile.mkdtemp()), None, WTF_CSRF_ENABLED=True, TESTING=False)
    with app.app_context():
        load_demo()
    out = Path(__file__).parent
    with serving(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        for size, viewport in SIZES.items():
            context = browser.new_context(locale="zh-CN", viewport=viewport)  # type: ignore[arg-type]
            page = context.new_page()
            sign_in(page, base, role="editor")
            for name, path in PAGES.items():
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(out / f"{name}-{size}.png"))
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
