"""Concept cues: a plain-language situation adds the retros' own terms to the query."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from search import concepts


def test_a_situation_in_plain_words_adds_the_domain_terms() -> None:
    assert concepts.expand("好几个月没再买过东西的顾客，怎么拉回来") == ("沉睡用户", "召回", "回流")
    assert "羊毛党" in concepts.expand("拉人头的奖励大多落进了假账号手里")
    assert "银发用户" in concepts.expand("How do we reach elderly people?")


def test_traditional_and_full_width_queries_match_the_same_cues() -> None:
    assert concepts.expand("很久沒下單的老客") == concepts.expand("很久没下单的老客")
    assert concepts.expand("ＷＩＮ-ＢＡＣＫ") == concepts.expand("win-back")


def test_terms_the_query_already_has_are_not_added_again() -> None:
    assert "召回" not in concepts.expand("召回很久没下单的老客")


def test_queries_in_the_retros_own_words_are_left_alone() -> None:
    for query in ("双11 直播 复盘", "企业微信社群", "ROI 低于预期的直播活动", "618 预售"):
        assert concepts.expand(query) == (), query


def test_the_shipped_file_loads() -> None:
    assert len(concepts.load()) >= 30


def test_a_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "concepts.txt"
    path.write_text("# ok\n沉睡用户 <- 很久没\n没有箭头的行\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":3: expected"):
        concepts.load(path)
    path.write_text("沉睡用户 <- (很久没\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":1: bad cue"):
        concepts.load(path)


def test_the_search_api_says_which_terms_it_added(client: FlaskClient) -> None:
    body = client.get("/api/v1/search", query_string={"q": "好几个月没买东西的顾客"}).json
    assert body is not None
    assert body["expanded_terms"] == ["沉睡用户", "召回", "回流"]
