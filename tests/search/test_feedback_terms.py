"""Pseudo-relevance feedback: the discriminative words of the meaning top, found by tf-idf."""

from __future__ import annotations

import math

from search.feedback import add_feedback, feedback_terms

# A small collection of retros as analyzed terms (what the index holds).
CORPUS = [
    ["门店", "开业", "活动", "到场", "引流", "海报", "到场", "复盘"],
    ["社群", "裂变", "活动", "到场", "引流", "渠道", "复盘"],
    ["会员", "积分", "兑换", "活动", "复盘"],
    ["直播", "带货", "活动", "主播", "复盘"],
    ["新品", "试吃", "活动", "复盘"],
    ["满减", "促销", "活动", "门槛", "复盘"],
    ["节日", "抽奖", "活动", "奖品", "复盘"],
    ["线下", "快闪", "活动", "引流", "到场", "复盘"],
    ["会员", "折扣", "活动", "力度", "复盘"],
    ["小程序", "签到", "活动", "奖励", "复盘"],
]
TOP = [CORPUS[0], CORPUS[1], CORPUS[7]]  # the meaning top of "活动没人来怎么办"


def document_frequency(term: str) -> int:
    return sum(term in doc for doc in CORPUS)


def test_the_words_the_top_results_share_and_the_collection_lacks_come_first() -> None:
    chosen = feedback_terms(TOP, document_frequency, len(CORPUS), max_doc_share=0.5)
    # 到场 and 引流 are in all three and in 3 of 10 campaigns; 活动 and 复盘 are everywhere and
    # say nothing; 门店, 海报, 社群 are one retro's words, not the topic's.
    assert [term for term, _ in chosen] == ["到场", "引流"]
    weights = dict(chosen)
    idf = math.log(10 / 3)
    # Relative frequency among each retro's content terms (活动 is a filler word: not counted).
    assert math.isclose(weights["到场"], (2 / 7 + 1 / 6 + 1 / 5) * idf)
    assert math.isclose(weights["引流"], (1 / 7 + 1 / 6 + 1 / 5) * idf)


def test_the_query_s_own_words_the_share_and_the_limit_are_respected() -> None:
    chosen = feedback_terms(
        TOP, document_frequency, len(CORPUS), exclude=["到场"], max_doc_share=0.5
    )
    assert [term for term, _ in chosen] == ["引流"]
    assert (
        feedback_terms(TOP, document_frequency, len(CORPUS), max_doc_share=0.5, limit=1)[0][0]
        == "到场"
    )
    # At a share of 0.2, terms in 3 of 10 campaigns no longer discriminate.
    assert feedback_terms(TOP, document_frequency, len(CORPUS), max_doc_share=0.2) == []
    # One document alone cannot agree with itself.
    assert feedback_terms([CORPUS[0]], document_frequency, len(CORPUS), max_doc_share=0.5) == []
    assert feedback_terms([], document_frequency, len(CORPUS)) == []
    assert feedback_terms(TOP, document_frequency, 0) == []


def test_feedback_scores_add_to_the_keyword_ranking_at_their_weight() -> None:
    keyword = [(1, 4.0), (2, 3.0)]
    extra = [(3, 10.0), (2, 2.0)]
    assert add_feedback(keyword, extra, weight=0.5) == [(3, 5.0), (1, 4.0), (2, 4.0)]
    assert add_feedback(keyword, [], weight=0.5) == keyword


def test_without_admitting_new_campaigns_feedback_only_re_ranks() -> None:
    keyword = [(1, 4.0), (2, 3.0)]
    extra = [(3, 10.0), (2, 4.0)]
    assert add_feedback(keyword, extra, weight=0.5, admit_new=False) == [(2, 5.0), (1, 4.0)]
