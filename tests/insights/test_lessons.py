"""Lesson items: cutting retros into items, themes, search with highlights, partial matches."""

from __future__ import annotations

from datetime import date

import pytest

from kb.insights.lessons import (
    THEMES,
    LessonItem,
    Outcome,
    classify,
    group_by_theme,
    search_lessons,
    split_items,
)


def test_split_items_cuts_bullets_numbers_and_paragraphs() -> None:
    markdown = """## 经验
- 多券叠加必须有**最低成交价护栏**
  任一 SKU 叠满后实付不得低于成本价
* 新人红包要接[设备指纹](https://example.com)

1. 建立统一的优惠叠加矩阵
2、预算分三批释放
（3）监控改为小时级
一、先做小流量实验

没有符号的一段话，
跨了两行。
- 短
"""
    assert split_items(markdown) == [
        "多券叠加必须有最低成交价护栏 任一 SKU 叠满后实付不得低于成本价",
        "新人红包要接设备指纹",
        "建立统一的优惠叠加矩阵",
        "预算分三批释放",
        "监控改为小时级",
        "先做小流量实验",
        "没有符号的一段话， 跨了两行。",
    ]
    assert split_items("") == []


@pytest.mark.parametrize(
    ("text", "themes"),
    [
        ("多券叠加必须有最低成交价护栏", ("reward",)),
        # 设备指纹 + 羊毛党 (2) before 红包 (1) before 新人 (1, later in the table)
        ("新人紅包要和設備指紋同時上線，防止羊毛黨", ("risk", "reward", "audience")),
        ("企微承接要提前按预估好友量准备账号", ("channel", "timing")),
        ("大促券预算分三批释放", ("reward", "budget")),  # a tie: table order
        ("ＲＯＩ 低于预期时暂停投入", ("budget",)),
        ("Win-back codes must not stack with the site-wide sale", ("reward", "risk")),
        ("Deadline guideline online", ("other",)),  # "line" (LINE app) only as a word
        ("一个与主题无关的句子", ("other",)),
    ],
)
def test_classify_reads_folded_text(text: str, themes: tuple[str, ...]) -> None:
    assert classify(text) == themes


def test_theme_keywords_are_folded_already() -> None:
    for _, words in THEMES.values():
        for word in words:
            assert word == word.lower()
            assert "紅" not in word


def item(text: str, campaign_id: int = 1, evidence: str = "", start: int = 2024) -> LessonItem:
    return LessonItem(
        campaign_id=campaign_id,
        campaign_title=f"活动 {campaign_id}",
        industry="电商",
        goal_type="gmv",
        status="completed",
        start_date=date(start, 1, 1),
        kind="hypothesis" if evidence else "lesson",
        text=text,
        themes=classify(f"{text} {evidence}"),
        outcome=Outcome(key_metric=None, hit=0, judged=0),
        result="validated" if evidence else None,
        evidence=evidence,
    )


ITEMS = [
    item("企微社群承接要提前扩容", 1),
    item("企业微信 1v1 私聊比群发转化高", 2, start=2025),
    item("短信通道不再可靠", 3),
    item("海报 A 比海报 B 点击率高", 4, evidence="企微群 A/B 各 1 万人 <script>"),
    item("直播间要准备替代款，防止断货", 5),
]


def test_search_matches_synonyms_and_highlights_escaped_text() -> None:
    found = search_lessons("企業微信", items=ITEMS)  # Traditional, and 企业微信 = 企微
    assert [h.item.campaign_id for h in found.hits] == [2, 1, 4]  # equal scores: newest first
    assert str(found.hits[1].text_html) == "<mark>企微</mark>社群承接要提前扩容"
    evidence = str(found.hits[2].evidence_html)
    assert "<mark>企微</mark>" in evidence
    assert "&lt;script&gt;" in evidence
    assert found.total == 3
    assert not found.partial


def test_search_needs_every_term_else_says_it_shows_partial_matches() -> None:
    both = search_lessons("企微 扩容", items=ITEMS)
    assert [h.item.campaign_id for h in both.hits] == [1]
    assert not both.partial
    partial = search_lessons("企微 不存在的词", items=ITEMS)
    assert partial.partial
    assert {h.item.campaign_id for h in partial.hits} == {1, 2, 4}
    assert search_lessons("不存在的词", items=ITEMS).total == 0
    assert search_lessons("的", items=ITEMS).total == 0  # only a stop word


def test_theme_and_kind_filters_and_counts() -> None:
    found = search_lessons("", theme="channel", items=ITEMS)
    assert {h.item.campaign_id for h in found.hits} == {1, 2, 3, 4, 5}
    assert found.theme_counts["channel"] == 5
    assert found.theme_counts["timing"] == 1
    hypotheses = search_lessons("", kind="hypothesis", items=ITEMS)
    assert [h.item.campaign_id for h in hypotheses.hits] == [4]
    paged = search_lessons("", items=ITEMS, limit=2, offset=2)
    assert paged.total == 5
    assert len(paged.hits) == 2
    groups = group_by_theme(search_lessons("", items=ITEMS).hits)
    assert [theme for theme, _ in groups] == ["channel"]
