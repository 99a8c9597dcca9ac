"""Lesson search expands a query as the main search does (search/concepts.py), and its group
headers count the whole result, not one page (issue 16: 叠券 found 1; "10 条" beside 86)."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from kb.insights import lessons


def test_a_concept_name_finds_the_items_that_describe_it(demo_app: Flask) -> None:
    with demo_app.app_context():
        found = lessons.search_lessons("叠券", limit=100)
        plain = [h for h in found.hits if "叠券" in h.item.text]
    texts = [h.item.text for h in found.hits]
    assert len(plain) <= 1 < found.total  # before: only the one item that says 叠券
    assert any("多券叠加" in t for t in texts)
    assert any("叠加矩阵" in t or "优惠叠加" in t for t in texts)
    assert all(re.search(r"叠|毛利|到手价|stack|margin", t, re.I) for t in texts), texts


def test_a_situation_adds_the_concepts_terms(demo_app: Flask) -> None:
    with demo_app.app_context():
        found = lessons.search_lessons("几张券一起用结果卖得越多亏得越多", limit=100)
    assert found.total >= 1
    assert any(re.search(r"叠|毛利", h.item.text) for h in found.hits)


def test_unrelated_words_still_find_nothing(demo_app: Flask) -> None:
    with demo_app.app_context():
        assert lessons.search_lessons("量子计算机").total == 0


def test_group_headers_count_the_whole_result(demo_client: FlaskClient) -> None:
    whole = demo_client.get("/lessons").get_data(as_text=True)
    tab = re.search(r'data-theme="reward">奖励设计 <span class="count">(\d+)</span>', whole)
    assert tab
    page = demo_client.get("/lessons?limit=5").get_data(as_text=True)
    headers = re.findall(r'<h2 id="theme-(\w+)">[^<]*<span class="muted small">共 (\d+) 条', page)
    assert headers
    total = int(re.search(r"共 (\d+) 条", page.split('id="lessons-total"')[1])[1])  # type: ignore[index]
    counts = dict(headers)
    # The headers of this page count every item of their group, not the five shown.
    assert sum(int(n) for n in counts.values()) <= total
    assert max(int(n) for n in counts.values()) > 5
    assert "本页" in page
