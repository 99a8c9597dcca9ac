"""The home page's search box on a phone (390×844) and a desktop: its hint is shown whole."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import serving, watched_page
from tests.conftest import make_app

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 780}  # the narrowest common Android screen
DESKTOP = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def home_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server with no campaigns: the search box does not depend on them."""
    app = make_app(tmp_path_factory.mktemp("home"), None, WTF_CSRF_ENABLED=True, TESTING=False)
    with serving(app) as url:
        yield url


@pytest.mark.parametrize(
    "viewport", [PHONE, SMALL_PHONE, DESKTOP], ids=["phone", "small-phone", "desktop"]
)
def test_the_search_hint_fits_its_box(
    browser: Browser, home_url: str, viewport: dict[str, int]
) -> None:
    # At 390 px the hint 「搜复盘：叠券、沉睡会员召回、直播 GMV…」 was cut after 直播.
    page, problems = watched_page(browser, viewport, home_url)
    box = page.locator(".home-search input[name=q]")
    expect(box).to_be_visible()
    # The placeholder's text measured in the box's own font, against the room inside its padding.
    fit = box.evaluate(
        """input => {
            const style = getComputedStyle(input, '::placeholder');
            const context = document.createElement('canvas').getContext('2d');
            context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
            const own = getComputedStyle(input);
            const room = input.clientWidth - parseFloat(own.paddingLeft)
                - parseFloat(own.paddingRight);
            return {text: input.placeholder, width: context.measureText(input.placeholder).width,
                    room: room};
        }"""
    )
    assert fit["text"], fit
    assert fit["width"] <= fit["room"], fit
    assert problems == []
    page.context.close()
