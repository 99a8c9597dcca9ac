"""The relevance floor: z-scores against a background, calibration, verdicts, keyword evidence."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search import relevance
from search.documents import CampaignText
from search.relevance import (
    ADJACENT_PATH,
    BACKGROUND_PATH,
    CONTRAST_CLEAR,
    CONTRAST_MARGIN,
    CORROBORATION_MARGIN,
    Calibration,
    Judgement,
    ModelScores,
    Vectors,
    background_texts,
    calibrate,
    combine,
    content_terms,
    contrast,
    contrast_texts,
    is_content_term,
    judge,
    keyword_evidence,
    library_queries,
    standardized,
    strength_of,
    words_matched,
)


def scores(
    ranking: list[tuple[int, float]], background: list[float], centroid: float = 0.0
) -> ModelScores:
    return ModelScores(scores=ranking, background=np.array(background), centroid=centroid)


def test_scores_are_z_scores_against_the_query_background() -> None:
    model = scores([(1, 0.9), (2, 0.5)], [0.4, 0.6], centroid=0.7)  # mean 0.5, std 0.1
    z, affinity = standardized(model)
    assert z == pytest.approx({1: 4.0, 2: 0.0})
    assert affinity == pytest.approx(2.0)


def test_leave_one_out_drops_the_text_s_own_passage() -> None:
    model = scores([(1, 1.0)], [1.0, 0.4, 0.6])  # passage 0 is the query's own text
    z, _ = standardized(model, leave_out=0)
    assert z[1] == pytest.approx(5.0)


def test_models_average_and_a_missed_campaign_takes_the_lowest_z() -> None:
    # Same raw cosines, different scales: each model is judged against its own background.
    e5 = scores([(1, 0.95), (2, 0.90)], [0.85, 0.87])  # mean 0.86, std 0.01: z 9, 4
    use = scores([(1, 0.50)], [0.0, 0.2])  # mean 0.1, std 0.1: z 4; campaign 2 missing
    strengths, _ = combine([e5, use])
    assert strengths[1] == pytest.approx((9 + 4) / 2)
    assert strengths[2] == pytest.approx((4 + 4) / 2)  # use's lowest returned z stands in


def test_calibration_takes_quantiles_of_the_background_run_as_queries() -> None:
    rng = np.random.default_rng(7)
    samples = []
    tops = []
    for i in range(20):
        background = rng.normal(0.0, 0.1, size=20)
        background[i] = 1.0  # its own passage, left out
        top = 0.1 * (i % 10)  # z = top / std of the rest
        samples.append([scores([(100 + i, top)], list(background), centroid=0.0)])
        rest = np.delete(background, i)
        tops.append((top - rest.mean()) / rest.std())
    calibration = calibrate(samples, query_quantile=0.9, doc_quantile=0.5)
    assert calibration is not None
    assert calibration.top == pytest.approx(float(np.quantile(tops, 0.9)))
    assert calibration.doc == pytest.approx(float(np.quantile(tops, 0.5)))
    assert calibration.samples == 20


def test_too_few_background_samples_give_no_floor() -> None:
    assert calibrate([[scores([(1, 0.5)], [0.0, 0.1, 0.2])]] * 3) is None


FLOORS = Calibration(affinity=2.0, top=5.0, doc=3.0, samples=50)
BACKGROUND = [0.0, 0.2]  # mean 0.1, std 0.1: z = (score - 0.1) / 0.1


def test_a_query_far_from_the_corpus_is_out_of_scope() -> None:
    verdict = judge([scores([(1, 0.45), (2, 0.3)], BACKGROUND, centroid=0.2)], FLOORS)
    assert not verdict.in_scope  # affinity 1 < 2, best strength 3.5 < 5
    assert not verdict.passes(1, FLOORS)  # strength 3.5 clears the doc floor, yet out of scope


def test_a_query_near_the_corpus_keeps_campaigns_above_the_doc_floor() -> None:
    verdict = judge([scores([(1, 0.45), (2, 0.3)], BACKGROUND, centroid=0.35)], FLOORS)
    assert verdict.in_scope  # affinity 2.5
    assert verdict.passes(1, FLOORS)  # 3.5 >= 3
    assert not verdict.passes(2, FLOORS)  # 2.0 < 3
    assert not verdict.passes(99, FLOORS)  # never scored


def test_one_strong_match_puts_a_query_in_scope() -> None:
    verdict = judge([scores([(1, 0.65), (2, 0.3)], BACKGROUND, centroid=0.1)], FLOORS)
    assert verdict.in_scope  # affinity 0, but strength 5.5 >= 5
    assert [verdict.passes(c, FLOORS) for c in (1, 2)] == [True, False]


def test_no_models_no_verdict_in_favour() -> None:
    assert not judge([], FLOORS).in_scope


def test_strength_names() -> None:
    assert [strength_of(z, FLOORS) for z in (6.0, 5.0, 4.0, 3.0, 2.9)] == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
    ]


def test_content_terms_drop_fillers_single_characters_and_numbers() -> None:
    assert [
        t for t in ("让", "s", "7", "2025", "如何", "活动", "拼团", "券后价") if is_content_term(t)
    ] == [
        "拼团",
        "券后价",
    ]
    assert not is_content_term("how")
    assert not is_content_term("whi")  # "why" as the analyzer stems it
    assert content_terms(["拼团", "给", "拼团", "宝妈"]) == ["拼团", "宝妈"]


def test_keyword_evidence_ignores_terms_the_query_did_not_type() -> None:
    # 会员积分 is a term of its own, not 积分 inside 微积分.
    assert keyword_evidence(["微积分", "极限"], [(1, ("会员积分", "兑换"))], 10) == set()
    assert keyword_evidence(["如何", "给"], [(1, ("如何", "给"))], 10) == set()  # nothing to match
    assert keyword_evidence(["拼团"], [(1, ("拼团",))], 10) == {1}


def test_the_shipped_background_is_large_enough_and_off_topic() -> None:
    texts = background_texts(BACKGROUND_PATH)
    assert len(texts) >= 40
    assert len(set(texts)) == len(texts)
    # Marketing words would make the background look like the corpus and lower every floor.
    for word in ("活动", "优惠", "会员", "促销", "campaign", "coupon"):
        assert not any(word in text for text in texts), word


def test_z_scores_are_finite_with_a_flat_background() -> None:
    z, affinity = standardized(scores([(1, 0.5)], [0.3, 0.3, 0.3], centroid=0.3))
    assert math.isfinite(z[1])
    assert math.isfinite(affinity)


def _judgement(affinity: float, best: float) -> Judgement:
    return Judgement(in_scope=True, affinity=affinity, strengths={1: best})


CALIBRATION = Calibration(
    affinity=0.0, top=4.0, doc=3.0, samples=20, affinity_spread=0.5, top_spread=1.0
)


def test_the_margin_is_in_background_standard_deviations() -> None:
    assert _judgement(0.25, 0.0).margin(CALIBRATION) == pytest.approx(0.5)
    assert _judgement(-1.0, 4.75).margin(CALIBRATION) == pytest.approx(0.75)


def test_a_query_just_above_the_floor_needs_a_word_of_its_own_in_the_library() -> None:
    near = _judgement(0.1, 0.0)  # 0.2 standard deviations above
    assert not near.corroborated(CALIBRATION, word_matched=False).in_scope
    assert near.corroborated(CALIBRATION, word_matched=True).in_scope
    far = _judgement(CORROBORATION_MARGIN * 0.5 + 0.01, 0.0)
    assert far.corroborated(CALIBRATION, word_matched=False).in_scope
    out = Judgement(in_scope=False, affinity=5.0, strengths={})
    assert not out.corroborated(CALIBRATION, word_matched=True).in_scope


def test_calibration_records_the_background_spreads() -> None:
    rng = np.random.default_rng(3)
    samples = [
        [scores([(1, float(rng.normal(0.3, 0.1)))], list(rng.normal(0, 0.1, 12)), 0.05 * i)]
        for i in range(12)
    ]
    calibration = calibrate(samples)
    assert calibration is not None
    affinities = [combine(models, leave_out=i)[1] for i, models in enumerate(samples)]
    assert calibration.affinity_spread == pytest.approx(float(np.std(affinities)))
    assert calibration.top_spread > 0


def test_words_matched_counts_only_the_query_s_own_content_terms() -> None:
    assert words_matched(["房东", "押金"], [("押金", "退款")])
    assert not words_matched(["房东", "押金"], [("骑手",)])
    assert not words_matched(["怎么", "房东"], [("怎么",)])  # a filler is no evidence


def test_keyword_evidence_one_common_word_is_not_a_match() -> None:
    # 公司 is in every campaign; 劳动合同 and 续签 in none: matching only 公司 is not enough.
    hits = [(cid, ("公司",)) for cid in range(1, 11)]
    assert keyword_evidence(["劳动合同", "公司", "续签"], hits, 10) == set()
    # Counted alike, one of two terms was enough: 水泥砂浆配合比 kept whatever matched 配合.
    assert keyword_evidence(["水泥砂浆", "配合"], [(1, ("配合",)), (2, ("配合",))], 10) == set()


def test_keyword_evidence_weighs_rare_terms_and_may_count_cue_terms() -> None:
    hits = [(1, ("拼团", "宝妈")), (2, ("宝妈",)), (3, ("宝妈",)), (4, ("召回",)), (5, ("拼团",))]
    kept = keyword_evidence(["拼团", "宝妈"], hits, 50, added_terms=["召回"])
    # 拼团 (in 2 of 50) weighs more than 宝妈 (in 3): alone it carries half the mass, 宝妈 not;
    # 召回 was added by a concept cue.
    assert kept == {1, 4, 5}
    assert keyword_evidence(["拼团", "宝妈"], hits, 50, share=0.9) == {1}


def _unit_rows(*rows: list[float]) -> Vectors:
    matrix = np.array(rows, dtype=np.float32)
    unit: Vectors = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return unit


def test_contrast_is_the_library_s_best_cosine_minus_the_background_s_in_their_spread() -> None:
    background = _unit_rows(*([1.0, float(i), 0.0] for i in range(10)))
    library = _unit_rows([0.0, 0.0, 1.0], [0.0, 1.0, 1.0])
    query = _unit_rows([0.0, 0.2, 1.0])[0]
    to_background = background @ query
    expected = (float((library @ query).max()) - float(to_background.max())) / to_background.std()
    assert contrast(query, library, background) == pytest.approx(expected)
    assert expected > 0  # nearer the library
    near_background = _unit_rows([1.0, 9.0, 0.0])[0]
    assert (contrast(near_background, library, background) or 0.0) < 0


def test_no_contrast_without_library_texts_or_with_too_few_background_texts() -> None:
    background = _unit_rows(*([1.0, float(i), 0.0] for i in range(10)))
    query = _unit_rows([0.0, 0.2, 1.0])[0]
    assert contrast(query, background[:0], background) is None
    assert contrast(query, background, background[:3]) is None


def _with_contrast(model: ModelScores, value: float | None) -> ModelScores:
    return dataclasses.replace(model, contrast=value)


def test_a_query_nearer_another_topic_than_the_library_is_out_of_scope() -> None:
    # In scope by affinity (2.5), as a question about an invoice was; its contrast decides.
    near = scores([(1, 0.45), (2, 0.3)], BACKGROUND, centroid=0.35)
    assert judge([near], FLOORS).contrast is None  # no library texts: no contrast test
    assert judge([near], FLOORS).in_scope
    between = judge([_with_contrast(near, -CONTRAST_MARGIN / 2)], FLOORS)
    assert between.in_scope
    assert between.contrast == pytest.approx(-CONTRAST_MARGIN / 2)
    nearer_other_topic = judge([_with_contrast(near, -CONTRAST_MARGIN * 2)], FLOORS)
    assert not nearer_other_topic.in_scope
    # Averaged over models: one model's doubt alone does not decide.
    both = [_with_contrast(near, -CONTRAST_MARGIN * 2), _with_contrast(near, CONTRAST_CLEAR)]
    assert judge(both, FLOORS).in_scope
    # A model without a contrast (its library texts not embedded yet): no contrast test at all.
    assert judge([_with_contrast(near, -9.0), near], FLOORS).contrast is None


def test_a_query_clearly_nearer_the_library_is_in_scope_whatever_its_affinity() -> None:
    far = scores([(1, 0.45), (2, 0.3)], BACKGROUND, centroid=0.2)
    assert not judge([far], FLOORS).in_scope  # affinity 1 < 2, best strength 3.5 < 5
    clear = judge([_with_contrast(far, CONTRAST_CLEAR)], FLOORS)
    assert clear.in_scope
    assert clear.corroborated(FLOORS, word_matched=False).in_scope  # no word needed
    assert not judge([_with_contrast(far, CONTRAST_CLEAR / 2)], FLOORS).in_scope


def test_between_the_contrast_thresholds_a_query_needs_a_word_of_its_own() -> None:
    # Far above the affinity floor (margin 10 > CORROBORATION_MARGIN), yet the contrast is unsure.
    high = scores([(1, 0.45)], BACKGROUND, centroid=1.15)
    assert judge([high], FLOORS).corroborated(FLOORS, word_matched=False).in_scope
    unsure = judge([_with_contrast(high, CONTRAST_CLEAR / 2)], FLOORS)
    assert unsure.in_scope
    assert not unsure.corroborated(FLOORS, word_matched=False).in_scope
    kept = unsure.corroborated(FLOORS, word_matched=True)
    assert kept.in_scope
    assert unsure.corroborated(FLOORS, word_matched=False).contrast == unsure.contrast


def test_the_contrast_test_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    near = _with_contrast(scores([(1, 0.45)], BACKGROUND, centroid=0.35), -9.0)
    assert not judge([near], FLOORS).in_scope
    monkeypatch.setattr(relevance, "CONTRAST_TEST", False)
    verdict = judge([near], FLOORS)
    assert verdict.in_scope
    assert verdict.contrast is None


_CAMPAIGN = CampaignText(
    id=1, version=1, title="2024 春季 拼团拉新复盘", industry="电商", department="增长",
    business_line=None, goal_type="acquisition", status="completed",
    start_date=date(2024, 3, 1), end_date=date(2024, 3, 31), budget_cny=None,
    audience=(), products=(), channels=(), reward_types=(), tags=("拼团", "宝妈"),
)  # fmt: skip


def _campaign(**fields: Any) -> CampaignText:
    return dataclasses.replace(_CAMPAIGN, **fields)


def test_library_queries_are_titles_goals_tags_and_lesson_lines_without_marks() -> None:
    campaign = _campaign(
        goal="新增首单用户 2 万",
        lessons="- **拼团门槛**要低于三人\n1. 宝妈群转发率最高\n- 复盘",
        problems="* 团长佣金结算晚了两周",
    )
    assert library_queries([campaign]) == [
        "2024 春季 拼团拉新复盘",
        "新增首单用户 2 万",
        "拼团门槛要低于三人",
        "宝妈群转发率最高",
        "团长佣金结算晚了两周",
    ]  # "拼团 宝妈" and "复盘" are shorter than a text that says something


def test_library_queries_stop_at_the_limit_and_drop_repeats() -> None:
    campaigns = [_campaign(id=i, goal="新增首单用户 2 万") for i in range(5)]
    assert library_queries(campaigns) == ["2024 春季 拼团拉新复盘", "新增首单用户 2 万"]
    many = [_campaign(id=i, title=f"第 {i} 期 拼团拉新复盘") for i in range(10)]
    assert len(library_queries(many, limit=4)) == 4


def test_the_neighbouring_topics_are_off_topic_and_apart_from_the_evaluation_sets() -> None:
    adjacent = background_texts(ADJACENT_PATH)
    assert len(adjacent) >= 80
    assert len(set(adjacent)) == len(adjacent)
    for word in ("活动", "优惠", "会员", "促销", "用户", "营销", "campaign", "coupon"):
        assert not any(word in text for text in adjacent), word
    # Written for the floor, not taken from the sets it is measured on.
    data = Path(__file__).resolve().parents[2] / "bench" / "data"
    evaluated = {
        item["query"].strip()
        for path in data.glob("search_*.json")
        for item in json.loads(path.read_text(encoding="utf-8"))["queries"]
    }
    assert not evaluated & set(adjacent)
    assert contrast_texts()[: len(background_texts(BACKGROUND_PATH))] == background_texts(
        BACKGROUND_PATH
    )
