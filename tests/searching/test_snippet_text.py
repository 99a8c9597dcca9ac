"""A result's snippet is the retro's text, not its Markdown (no "- ", "**", "## " in results)."""

from __future__ import annotations

import timeit

from flask.testing import FlaskClient

from kb.searching.explain import plain_text
from kb.web.rendering import render_markdown
from tests.factories import campaign_payload

RETRO = (
    "## 复盘结论\n"
    "- 流量侧执行到位：App 推送 + 短信两轮预热\n"
    "- 回流首单转化率 7.8%，ROI 1:1.3，**关键目标未达成**\n"
    "\n1. 见 [风控周报](https://example.com/r) 与 `coupon_stack` 规则\n"
    "\n> 引用：叠券要有护栏\n"
    "\n| 指标 | 实际 |\n|---|---:|\n| GMV | 1.26 亿 |\n"
)


def test_plain_text_drops_the_marks_and_keeps_the_words() -> None:
    assert plain_text(RETRO) == (
        "复盘结论 流量侧执行到位：App 推送 + 短信两轮预热 回流首单转化率 7.8%，ROI 1:1.3，"
        "关键目标未达成 见 风控周报 与 coupon_stack 规则 引用：叠券要有护栏 指标 实际 GMV 1.26 亿"
    )
    # What reads as text stays: numbers with points, a + between channels, a date's dots.
    assert plain_text("11.11 当天 3.2 倍；2.5 折 + 满减") == "11.11 当天 3.2 倍；2.5 折 + 满减"
    # The same words as the page's own rendering shows, whitespace aside.
    rendered = " ".join(render_markdown(RETRO).striptags().split())
    assert plain_text(RETRO).replace(" ", "") == rendered.replace(" ", "")


def test_plain_text_is_cheaper_than_rendering() -> None:
    # A search reads up to six fields of each result: the renderer would cost far more.
    fast = min(timeit.repeat(lambda: plain_text(RETRO), number=200, repeat=3))
    slow = min(timeit.repeat(lambda: render_markdown(RETRO), number=200, repeat=3))
    assert fast * 5 < slow, (fast, slow)


def test_search_snippet_shows_no_markdown(client: FlaskClient) -> None:
    body = campaign_payload(lessons=RETRO, summary="沉睡会员召回，**两轮**短信触达。")
    assert client.post("/api/v1/campaigns", json=body).status_code == 201
    found = client.get("/api/v1/search", query_string={"q": "关键目标", "mode": "keyword"})
    (result,) = found.get_json()["results"]
    assert "<mark>" in result["snippet"]
    for mark in ("**", "- ", "## ", "](", "`"):
        assert mark not in result["snippet"], (mark, result["snippet"])
    page = client.get("/search", query_string={"q": "关键目标"}).get_data(as_text=True)
    assert "**关键" not in page
    # Without a matched word the snippet is the summary's start, also as text.
    plain = client.get("/api/v1/search", query_string={"q": "召回", "mode": "semantic"})
    assert "**" not in plain.get_json()["results"][0]["snippet"]
