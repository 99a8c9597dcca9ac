"""Concept cues: a plain-language situation adds the retros' own terms to the query."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from search import concepts
from tests.factories import campaign_payload


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


def test_a_cue_inside_another_word_adds_nothing() -> None:
    # 积分 is a cue for member points; in 微积分 (calculus) it is a piece of another word.
    assert concepts.expand("微积分 公式 推导") == ()
    assert "权益兑换" in concepts.expand("会员积分 怎么用")  # inside a word of our dictionary


def test_a_cue_inside_a_word_the_segmenter_only_guessed_still_counts() -> None:
    # rjieba's HMM glues 请大博主 into one unknown "word": 博主 is still a word of the query.
    assert "KOL" in concepts.expand("要不要请大博主带货")


def test_english_marketing_words_add_their_chinese_terms() -> None:
    added = concepts.expand("Repeat purchases after the flash sale")
    assert {"复购", "秒杀"} <= set(added)
    assert "优惠券" in concepts.expand("coupons for Black Friday")
    assert "优惠券" not in concepts.expand("couponing")  # whole words only


def test_a_malformed_glossary_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "glossary.txt"
    path.write_text("复购 <- repurchase\n复购 <- 复购率\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2: expected"):
        concepts.load_glossary(path)


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


def test_expansion_can_be_turned_off_for_the_words_as_typed(client: FlaskClient) -> None:
    created = client.post("/api/v1/campaigns", json=campaign_payload())  # 沉睡会员召回
    assert created.status_code == 201, created.get_json()
    query = "好几个月没买东西的顾客"
    body = client.get("/api/v1/search", query_string={"q": query, "mode": "keyword"}).json
    plain = client.get(
        "/api/v1/search", query_string={"q": query, "mode": "keyword", "expand": "false"}
    ).json
    assert body is not None
    assert plain is not None
    assert plain["expanded_terms"] == []
    assert [r["id"] for r in body["results"]] == [created.get_json()["id"]]
    assert {"沉睡用户", "召回"} <= set(body["results"][0]["matched_terms"])
    # The words as typed never say 沉睡 or 召回: the campaign matches them on nothing.
    assert plain["results"] == []


def test_the_search_page_offers_both_ways_and_keeps_the_choice(client: FlaskClient) -> None:
    query = "好几个月没买东西的顾客"
    expanded = client.get("/search", query_string={"q": query}).get_data(as_text=True)
    assert "同时查找：沉睡用户、召回、回流" in expanded
    assert "expand=false" in expanded  # the link to the words as typed
    plain = client.get("/search", query_string={"q": query, "expand": "false"}).get_data(
        as_text=True
    )
    assert "同时查找" not in plain
    assert "只搜原词，未补充：沉睡用户、召回、回流" in plain
    assert "expand=true" in plain  # the way back
    # The next search from this page's form stays with the words as typed.
    assert '<input type="hidden" name="expand" value="false">' in plain
    # A blank value (a form without the choice) means the default: expanded.
    blank = client.get("/api/v1/search", query_string={"q": query, "expand": ""}).json
    assert blank is not None
    assert blank["expanded_terms"] == ["沉睡用户", "召回", "回流"]
