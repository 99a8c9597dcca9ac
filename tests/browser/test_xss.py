"""Issue #5: script in a campaign, a playbook, a user's name or a token's name never runs.

XSS payloads go into every Markdown field, every title and every short text of a campaign (and
through an edit, so the history diff shows them; and through search, so the highlighted snippets
cut them), into a playbook, a user's display name and an API token's name. Then every page that
shows them is opened in a real browser as that user. A page passes when no dialog opened,
``window.__xss`` was never set, and its DOM holds no injected element: no inline script, no event
handler attribute, no frame, no ``javascript:`` URL. Clicking the rendered Markdown links does
nothing either.

The browser bypasses the Content-Security-Policy on purpose: the policy would block inline script
anyway (tests/browser/test_csp.py checks it), and these tests check the line before it, that the
pages never emit live markup from stored or reflected text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect

from kb.accounts import services as accounts
from tests.browser.conftest import record_dialogs, serving
from tests.conftest import make_app
from tests.signed_in import PASSWORD

pytestmark = pytest.mark.browser

MARK = "召回XSS"  # a searchable word in front of the payloads: the pages must show it
TEMPLATE = "{{7*7}}"  # template injection: must render as these seven characters
LINK_TEXT = "点我XSS"  # the text of every Markdown / HTML link with a javascript: target

# Payloads for Markdown fields: raw HTML, Markdown links, autolinks and known sanitizer bypasses.
PAYLOADS = (
    "<script>window.__xss=1;alert('script')</script>",
    "<img src=x onerror=\"window.__xss=1;alert('img')\">",
    "<svg onload=window.__xss=1>",
    "<svg><script>window.__xss=1</script></svg>",
    f"[{LINK_TEXT}](javascript:window.__xss=1;alert('md-link'))",
    f"[{LINK_TEXT}](JaVaScRiPt:alert('md-link-case'))",
    f"[{LINK_TEXT}](javascript&#58;alert('md-link-entity'))",
    f"[{LINK_TEXT}][evil]\n\n[evil]: javascript:alert('md-ref')",
    f"![{LINK_TEXT}](x\" onerror=\"alert('md-img'))",
    "<javascript:alert('autolink')>",
    "<http://example.com/\" onmouseover=\"alert('autolink-attr')>",
    f'<a href="javascript:window.__xss=1">{LINK_TEXT}</a>',
    f"<a href=\"jav&#x09;ascript:alert('html-entity')\">{LINK_TEXT}</a>",
    f'<a href="#" onclick="alert(\'onclick\')">{LINK_TEXT}</a>',
    '"><iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "</textarea><script>alert('textarea')</script>",
    "</title><script>alert('title')</script>",
    "'><svg/onload=alert('quote')>",
    "<details open ontoggle=alert('toggle')>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert('noscript')>\">",
    "<object data=\"javascript:alert('object')\"></object>",
    "<base href=\"javascript:alert('base')//\">",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(\'meta\')">',
    "`<script>alert('code')</script>`",
    "```html\n<script>alert('fence')</script>\n```",
    f"| a | b |\n|---|---|\n| <img src=x onerror=alert('table')> | {TEMPLATE} |",
    TEMPLATE,
    "{% raw %}{{ config }}{% endraw %}",
)
# Payloads that fit short fields (at most 50 characters with the mark in front).
SHORT = (
    "<script>alert('s')</script>",
    "<img src=x onerror=alert('s')>",
    "<svg onload=alert('s')>",
    "\"><iframe srcdoc='<script>alert(1)</script>'>",
    "'><svg/onload=alert('s')>",
    f"javascript:alert('s') {TEMPLATE}",
)
# One campaign per title payload (titles hold at most 200 characters).
TITLES = (
    f"{MARK} {TEMPLATE} <script>window.__xss=1;alert('title')</script>",
    f"{MARK} <img src=x onerror=\"window.__xss=1;alert('title')\">",
    f'{MARK} "><svg onload=window.__xss=1> {TEMPLATE}',
    f"{MARK} </title><script>alert('title')</script>",
    f'{MARK} "><iframe srcdoc="<script>parent.__xss=1</script>">',
    f"{MARK} [{LINK_TEXT}](javascript:alert('title'))",
)
DISPLAY_NAME = f"XSS用户 \"><img src=x onerror=alert('user')> {TEMPLATE}"
TOKEN_NAME = f"XSS令牌 <script>alert('token')</script> {TEMPLATE}"
USERNAME = "xss-admin"

# What a payload that ran or got through would leave in the page (it reports the dialogs).
FIND_INJECTED = r"""
() => {
  const found = [];
  if (window.__xss !== undefined) found.push("window.__xss was set");
  const urlAttributes = ["href", "src", "action", "formaction", "data", "xlink:href", "srcdoc"];
  for (const el of document.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on")) found.push(`<${tag} ${name}>`);
      const value = attr.value.replace(/[\u0000-\u0020]/g, "").toLowerCase();
      if (urlAttributes.includes(name) && /^(javascript|vbscript):/.test(value)) {
        found.push(`<${tag} ${name}=${attr.value}>`);
      }
      if (name === "srcdoc") found.push(`<${tag} srcdoc>`);
    }
  }
  const injected = "iframe, frame, object, embed, base, img, math, noscript, style, " +
    "meta[http-equiv], script:not([src]):not([type='application/json'])";
  for (const el of document.querySelectorAll(injected)) found.push(`<${el.tagName.toLowerCase()}>`);
  return found;
}
"""


def markdown_text(label: str) -> str:
    """Every payload, inline in one paragraph and then one block each, after the mark."""
    inline = " ".join(p for p in PAYLOADS if "\n" not in p)
    return f"{MARK} {label} {inline}\n\n" + "\n\n".join(PAYLOADS)


def short(i: int) -> str:
    return f"{MARK}{SHORT[i % len(SHORT)]}"[:50]


def xss_campaign(label: str) -> dict[str, Any]:
    """A completed campaign with payloads in every text it holds."""
    return {
        "title": TITLES[0],
        "industry": short(0),
        "department": f"{MARK} {SHORT[3]} {TEMPLATE}",
        "business_line": short(1),
        "goal_type": "reactivation",
        "goal": markdown_text(f"goal {label}"),
        "audience": ["沉睡用户", *(short(i) for i in range(len(SHORT)))],
        "products": [short(i + 1) for i in range(len(SHORT))],
        "channels": [short(i + 2) for i in range(len(SHORT))],
        "tags": [short(i + 3) for i in range(len(SHORT))],
        "rewards": [
            {"type": short(i), "detail": markdown_text("reward")[:1000], "stackable": True}
            for i in range(2)
        ],
        "start_date": "2025-06-01",
        "end_date": "2025-06-20",
        "status": "completed",
        "budget_cny": 10000.0,
        "metrics": [
            {"name": f"{short(i)}", "unit": "%", "baseline": 5.0, "target": 10.0, "actual": 12.0}
            for i in range(len(SHORT))
        ],
        "summary": markdown_text(f"summary {label}"),
        "went_well": markdown_text(f"went_well {label}"),
        "problems": markdown_text(f"problems {label}"),
        "lessons": markdown_text(f"lessons {label}"),
        "recommendations": markdown_text(f"recommendations {label}"),
        "hypotheses": [
            {
                "statement": markdown_text(f"statement {label}")[:2000],
                "result": "validated",
                "evidence": markdown_text(f"evidence {label}")[:5000],
            }
        ],
        "documents": [
            {"title": f"{MARK} {TITLES[i][len(MARK) + 1 :]}", "kind": "strategy", "body": body}
            for i, body in enumerate((markdown_text(f"document {label}"), PAYLOADS[4]))
        ],
    }


def title_campaign(title: str) -> dict[str, Any]:
    """A planned campaign named with a payload, colliding with the draft of the draft test."""
    return {
        "title": title,
        "industry": "电商",
        "department": "会员运营中心",
        "goal_type": "reactivation",
        "goal": f"{MARK} 召回沉睡会员",
        "audience": ["沉睡用户"],
        "rewards": [{"type": "满减券", "detail": "满 199 减 40", "stackable": True}],
        "start_date": "2026-12-10",
        "end_date": "2026-12-20",
        "status": "planned",
        "metrics": [{"name": "转化率", "unit": "%", "target": 10.0}],
        "lessons": f"{MARK} {title}",
    }


@dataclass(frozen=True)
class XssSite:
    url: str
    app: Flask
    campaign_id: int  # payloads everywhere, edited once: versions 1 and 2
    title_ids: list[int]  # one per title payload
    trashed_id: int  # a payload title, in the trash
    playbook_id: int


@pytest.fixture(scope="module")
def site(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[XssSite]:
    app = make_app(tmp_path_factory.mktemp("xss"), None, WTF_CSRF_ENABLED=True, TESTING=False)
    with app.app_context():
        accounts.create_user(USERNAME, "admin", password=PASSWORD, display_name=DISPLAY_NAME)
        token = accounts.create_token(TOKEN_NAME, "admin").secret
    with serving(app) as url:
        api = browser.new_context(
            base_url=url, extra_http_headers={"Authorization": f"Bearer {token}"}
        )
        request = api.request

        def post(path: str, body: dict[str, Any]) -> int:
            response = request.post(path, data=body)
            assert response.status == 201, response.text()
            campaign_id: int = response.json()["id"]
            return campaign_id

        campaign_id = post("/api/v1/campaigns", xss_campaign("v1"))
        edited = request.put(
            f"/api/v1/campaigns/{campaign_id}", data={**xss_campaign("v2"), "version": 1}
        )
        assert edited.status == 200, edited.text()
        title_ids = [post("/api/v1/campaigns", title_campaign(title)) for title in TITLES]
        trashed_id = post("/api/v1/campaigns", title_campaign(f"{MARK} 回收站 {TITLES[1]}"))
        assert request.delete(f"/api/v1/campaigns/{trashed_id}").status == 204
        playbook = {
            "title": f"{MARK} {TEMPLATE} <script>alert('playbook')</script>",
            "body": markdown_text("playbook"),
            "theme": "reward",
            "supporting_ids": [campaign_id, title_ids[1]],
            "contradicting_ids": [title_ids[2]],
        }
        playbook_id = post("/api/v1/playbooks", playbook)
        api.close()
        yield XssSite(url, app, campaign_id, title_ids, trashed_id, playbook_id)


@pytest.fixture(scope="module")
def context(browser: Browser, site: XssSite) -> Iterator[BrowserContext]:
    """One browser context for the module, CSP bypassed, signed in as the payload-named admin."""
    context = browser.new_context(locale="zh-CN", bypass_csp=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{site.url}/login")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{site.url}/")  # sign-in lands on the home page
    page.close()
    yield context
    context.close()


@pytest.fixture
def xss_page(context: BrowserContext) -> Iterator[tuple[Page, list[str]]]:
    """A page of the signed-in context, with the real dialogs it opened (none, we hope)."""
    page = context.new_page()
    yield page, record_dialogs(page)
    page.close()


def assert_inert(page: Page, dialogs: list[str], *shown: str) -> None:
    """Nothing ran and nothing was injected; the page shows each of ``shown`` as text."""
    page.wait_for_load_state("load")
    assert (page.url, page.evaluate(FIND_INJECTED), dialogs) == (page.url, [], [])
    text = page.locator("body").inner_text()
    for expected in shown:
        assert expected in text, (page.url, expected)


def open_inert(page: Page, dialogs: list[str], url: str, *shown: str) -> None:
    response = page.goto(url)
    assert response is not None
    assert response.status == 200, url
    assert_inert(page, dialogs, *shown)


def stored_pages(site: XssSite) -> list[tuple[str, tuple[str, ...]]]:
    """Every page that shows stored payloads, with texts it must show (proof it shows them)."""
    c, p = site.campaign_id, site.playbook_id
    title_pages = [(f"/campaigns/{i}", (MARK, TITLES[n])) for n, i in enumerate(site.title_ids)]
    return [
        ("/campaigns", (MARK, TEMPLATE)),
        (f"/campaigns/{c}", (MARK, "summary v2", "statement v2", TEMPLATE)),
        (f"/campaigns/{c}/edit", (MARK,)),
        (f"/campaigns/{c}/print", (MARK, "summary v2", "document v2", TEMPLATE)),
        (f"/campaigns/{c}/history", (MARK, "XSS令牌", TEMPLATE)),
        (f"/campaigns/{c}/history/1", (MARK, "<script>window.__xss=1;alert('script')</script>")),
        (f"/campaigns/{c}/history/2", ("summary v1", "summary v2", "<svg onload=window.__xss=1>")),
        (f"/campaigns/{site.title_ids[0]}/history", (TITLES[0],)),
        (f"/campaigns/{site.trashed_id}/history", (TITLES[1],)),
        *title_pages,
        ("/search?q=召回", (MARK, TEMPLATE)),
        ("/search?q=onerror", ("onerror",)),
        ("/search?q=script", ("<script>",)),
        ("/search?q=iframe+srcdoc", ("iframe",)),
        (f"/search?q={quote('点我XSS')}", (LINK_TEXT,)),
        (f"/search?q={quote('7*7')}", ("7*7",)),
        ("/lessons", (MARK,)),
        ("/lessons?q=召回", (MARK,)),
        ("/lessons?q=onerror", ("onerror",)),
        (f"/playbooks/{p}", (MARK, "playbook", TEMPLATE)),
        (f"/playbooks/{p}/edit", ()),
        ("/portfolio?date_from=2025-01-01&date_to=2026-12-31", (MARK,)),
        ("/trash", (f"{MARK} 回收站",)),
        ("/drafts/new", ()),
        ("/admin/users", ("XSS用户", TEMPLATE)),
        ("/admin/tokens", ("XSS令牌", TEMPLATE)),
        ("/admin/audit", ("XSS令牌", MARK)),
        ("/admin/settings", ()),
        ("/account", ()),
    ]


def test_stored_payloads_never_run(xss_page: tuple[Page, list[str]], site: XssSite) -> None:
    page, dialogs = xss_page
    for path, shown in stored_pages(site):
        open_inert(page, dialogs, f"{site.url}{path}", *shown)
    # The highlighted snippets: marks inside escaped payload text, not inside tags.
    page.goto(f"{site.url}/search?q=onerror")
    expect(page.locator("mark").first).to_have_text("onerror")


def test_rendered_links_do_nothing_when_clicked(
    xss_page: tuple[Page, list[str]], site: XssSite
) -> None:
    page, dialogs = xss_page
    for path in (f"/campaigns/{site.campaign_id}", f"/playbooks/{site.playbook_id}"):
        open_inert(page, dialogs, f"{site.url}{path}")
        links = page.locator(".markdown a", has_text=LINK_TEXT)
        assert links.count() >= 6, path  # six link payloads in each Markdown field
        hrefs = links.evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert all(href is None or href.startswith(("http", "#")) for href in hrefs), hrefs
        links.first.click()  # a real click, then every link the way a script would click it
        links.evaluate_all("links => links.forEach(a => a.click())")
        expect(page).to_have_url(re.compile(rf"^{re.escape(site.url + path)}#?$"))
        assert_inert(page, dialogs)


def test_export_markdown_is_a_download_not_a_page(context: BrowserContext, site: XssSite) -> None:
    response = context.request.get(f"{site.url}/campaigns/{site.campaign_id}/export.md")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert PAYLOADS[0] in response.text()  # verbatim: it is Markdown, for people to read


def test_draft_analysis_never_runs_payloads(
    xss_page: tuple[Page, list[str]], site: XssSite
) -> None:
    page, dialogs = xss_page
    page.goto(f"{site.url}/drafts/new")
    page.fill("input[name=title]", f"{MARK} 草案 {TITLES[0]}")
    page.fill("input[name=industry]", short(1))
    page.fill("input[name=business_line]", short(2))
    page.select_option("select[name=goal_type]", "reactivation")
    page.fill("input[name=start_date]", "2026-12-12")
    page.fill("input[name=end_date]", "2026-12-18")
    page.fill("input[name=audience]", f"沉睡用户、{short(4)}")
    page.fill("input[name=products]", short(5))
    page.fill("input[name='rewards-0-type']", short(0))
    page.fill("input[name='rewards-0-detail']", "8折 <img src=x onerror=alert('draft')>")
    page.check("input[name='rewards-0-stackable']")
    page.fill("input[name='metrics-0-name']", short(3))
    page.fill("input[name='metrics-0-target']", "11")
    page.get_by_role("button", name="查看相似案例与冲突").click()

    expect(page.locator(".conflict")).to_have_count(len(TITLES))
    expect(page.locator(".similar-cases .case").first).to_contain_text(MARK)
    page.locator(".similar-cases details summary").first.click()  # open the Markdown fields
    assert_inert(page, dialogs, TITLES[0], TITLES[2], "lessons v2")
    expect(page.locator("input[name=title]")).to_have_value(f"{MARK} 草案 {TITLES[0]}")


REFLECTED = "\"><script>alert('q')</script><img src=x onerror=alert('q')>{{7*7}}"


def test_reflected_query_text_never_runs(xss_page: tuple[Page, list[str]], site: XssSite) -> None:
    page, dialogs = xss_page
    q = quote(REFLECTED)
    for path in (
        f"/search?q={q}",
        f"/search?q={q}&industry={q}&channel={q}",
        f"/campaigns?industry={q}&date_from={q}",
        f"/lessons?q={q}&theme={q}",
        f"/admin/audit?actor={q}&action={q}",
        f"/portfolio?business_line={q}&goal_type={q}",
    ):
        response = page.goto(f"{site.url}{path}")
        assert response is not None
        assert response.status in (200, 422), path
        assert_inert(page, dialogs, USERNAME)


def test_login_next_never_leaves_the_site(browser: Browser, site: XssSite) -> None:
    context = browser.new_context(locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    dialogs = record_dialogs(page)
    for target in ("javascript:alert('next')", "//example.com/", '"><svg onload=alert(1)>'):
        open_inert(page, dialogs, f"{site.url}/login?next={quote(target)}")
        expect(page.locator("input[name=next]")).to_have_value("")
    # Signing in after a bad next lands on the default page.
    page.fill("input[name=username]", "test-viewer")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{site.url}/")
    assert_inert(page, dialogs, MARK)
    context.close()


def test_the_detector_sees_an_injection(xss_page: tuple[Page, list[str]], site: XssSite) -> None:
    # Without this check a broken detector would let every test above pass.
    page, dialogs = xss_page
    open_inert(page, dialogs, f"{site.url}/campaigns", MARK)
    page.evaluate(
        """() => {
          const div = document.createElement("div");
          div.innerHTML = '<img src=x onerror="window.__xss=1;alert(1)">';
          document.body.appendChild(div);
        }"""
    )
    page.wait_for_function("() => window.__xss === 1")
    found = page.evaluate(FIND_INJECTED)
    assert found == ["window.__xss was set", "<img onerror>", "<img>"]
    assert dialogs == ["alert: 1"]
