"""Take the screens in this folder: home, campaign and draft pages at 390×844 and 1440×900.

Run from the repository root: ``.venv/bin/python docs/screens/make_screens.py``. It serves a fresh
app on the demo campaigns with the product's default embedding models (``e5,use``, so the similar
cases are the ones a planner would see), signs in as an editor and takes each page once the network
is idle (the campaign page's similar cases load after it). The draft screen is an analysed draft
that collides with the demo's planned 鲜丰到家 campaigns, as it lands on its summary band. The
pages need a CJK font on the machine taking the screens (Debian: ``apt-get install
fonts-noto-cjk``), never one shipped by the app.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kb.demo import load_demo  # noqa: E402  # after the repository is on the path
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, serving, sign_in  # noqa: E402
from tests.conftest import make_app  # noqa: E402

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}
PAGES = {"home": "/", "campaign": "/campaigns/1"}
MODELS_DIR = ROOT / "tests" / ".cache" / "models"


def analyse_a_draft(page: Page, base: str) -> None:
    """Fill in a 双十二 recall draft with stackable coupons and analyse it."""
    page.goto(f"{base}/drafts/new")
    page.fill("input[name=title]", "鲜丰到家 双十二沉睡会员召回：叠加券 + 企微社群")
    page.fill("input[name=industry]", "生鲜电商")
    page.fill("input[name=business_line]", "鲜丰到家")
    page.select_option("select[name=goal_type]", "reactivation")
    page.fill("input[name=start_date]", "2026年12月12日")
    page.fill("input[name=end_date]", "2026年12月20日")
    page.fill("input[name=audience]", "沉睡会员、价格敏感用户")
    page.fill("input[name=products]", "有机蔬菜、水果")
    page.fill("input[name='rewards-0-type']", "满减券")
    page.fill("input[name='rewards-0-detail']", "满 99 减 20，可与会员 8 折叠加")
    page.check("input[name='rewards-0-stackable']")
    page.fill("input[name='metrics-0-name']", "召回率")
    page.fill("input[name='metrics-0-unit']", "%")
    page.fill("input[name='metrics-0-baseline']", "6")
    page.fill("input[name='metrics-0-target']", "9")
    page.get_by_role("button", name="查看相似案例与冲突").click()
    page.locator("#summary").wait_for()
    page.wait_for_load_state("networkidle")


def main() -> None:
    """Write <page>-<size>.png next to this file."""
    app = make_app(
        Path(tempfile.mkdtemp()),
        None,
        WTF_CSRF_ENABLED=True,
        TESTING=False,
        EMBEDDING_MODELS="e5,use",
        MODELS_DIR=str(MODELS_DIR),
    )
    with app.app_context():
        load_demo()
    out = Path(__file__).parent
    with serving(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        for size, viewport in SIZES.items():
            context = browser.new_context(locale="zh-CN", viewport=viewport)  # type: ignore[arg-type]
            context.set_default_timeout(60_000)
            page = context.new_page()
            sign_in(page, base, role="editor")
            for name, path in PAGES.items():
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(out / f"{name}-{size}.png"))
            analyse_a_draft(page, base)
            page.screenshot(path=str(out / f"draft-{size}.png"))
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
