"""Collisions: dates, shared users or products, business lines, stacking rewards, discount text."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from kb.drafts.collisions import (
    CampaignFacts,
    Collision,
    RewardFacts,
    find_collisions,
    parse_discount,
    segment_key,
    worst_case,
)

DEMO = Path(__file__).resolve().parents[2] / "kb" / "demo_data" / "campaigns.json"
STACKABLE = RewardFacts("满减券", "满 100 减 20", stackable=True)
EXCLUSIVE = RewardFacts("满减券", "满 100 减 20", stackable=False)


def campaign(**overrides: Any) -> CampaignFacts:
    """Return a running campaign on 12-10..12-14 for 宝妈 buying 纸尿裤, with fresh defaults."""
    fields: dict[str, Any] = {
        "id": 2,
        "title": "其他活动",
        "business_line": "宝贝优选",
        "status": "running",
        "start_date": date(2026, 12, 10),
        "end_date": date(2026, 12, 14),
        "audience": ("宝妈",),
        "products": ("纸尿裤",),
        "rewards": (),
    }
    return CampaignFacts(**(fields | overrides))


DRAFT = campaign(id=1, title="草案", status="planned", audience=("宝妈", "大学生"))


def only(collisions: list[Collision]) -> Collision:
    assert len(collisions) == 1
    return collisions[0]


# --- parse_discount ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reward_type", "detail", "rate", "amount"),
    [
        ("折扣", "8折", 0.20, None),
        ("折扣", "八折", 0.20, None),
        ("折扣", "8.5折", 0.15, None),
        ("折扣", "85折", 0.15, None),
        ("折扣", "八五折", 0.15, None),
        ("折扣", "付费会员纸尿裤 85 折", 0.15, None),
        ("折扣", "打7折", 0.30, None),
        ("折扣", "８折", 0.20, None),  # full-width digit
        ("折扣", "20% off", 0.20, None),
        ("折扣", "Win-back code: 20% off, single use", 0.20, None),
        ("折扣", "实验组：第 2 周 95 折，第 4 周起 88 折", 0.12, None),  # alternatives: deepest
        ("满减券", "满199减40", 40 / 199, 40.0),
        ("满减券", "满 199 减 40", 40 / 199, 40.0),
        ("满减券", "满１９９减４０", 40 / 199, 40.0),
        ("满减券", "每满100减15", 0.15, 15.0),
        ("满减券", "全站滿 NT$2,000 折 NT$200 優惠券", 0.10, None),  # a rate, but not CNY
        ("满减券", "新客首單滿 HK$300 減 HK$80", 80 / 300, None),
        ("红包", "回归红包 3 张（满 25 减 10 × 3）", 0.40, 10.0),
        ("折扣", "立减10元", None, 10.0),
        ("折扣", "直降 20 元", None, 20.0),
        ("折扣", "每罐立减 40 元，纸尿裤 2 包立减 30 元", None, 40.0),
        ("红包", "10 元红包", None, 10.0),
        ("红包", "直播间红包 5–20 元", None, 20.0),  # the top of the range
        ("现金返还", "团长每成 1 团返 3 元", None, 3.0),
        ("折扣", "第二件半价", 0.25, None),
        ("折扣", "第二件五折", 0.25, None),
        ("赠品", "买一送一", 0.50, None),
        ("现金返还", "返现 10%", 0.10, None),
        ("积分", "返 5% 积分", 0.05, None),
        ("积分", "积分抵现，最高抵扣订单金额 30%", 0.30, None),
    ],
)
def test_parse_discount(
    reward_type: str, detail: str, rate: float | None, amount: float | None
) -> None:
    discount = parse_discount(reward_type, detail)
    assert discount is not None
    assert discount.rate == (None if rate is None else pytest.approx(rate))
    assert discount.amount_cny == amount
    assert discount.text


@pytest.mark.parametrize(
    ("reward_type", "detail"),
    [
        ("免运费", "免运费"),
        ("免运费", "Free shipping over US$35"),
        ("赠品", "满 88 元送 2.5kg 大米"),  # a threshold, not money off
        ("积分", "每消费 1 元得 2 积分，纸尿裤双倍积分"),
        ("积分", "消費滿 NT$1,000 會員點數 5 倍送"),
        ("折扣", "体验课 1 元"),  # a price, not a discount
        ("抽奖", "中奖概率 10%"),
        ("红包", "新生開通送 NT$50 校園外送金"),  # no exchange rate
        ("满减券", ""),
        ("折扣", "10折"),
    ],
)
def test_unparseable_rewards_give_none(reward_type: str, detail: str) -> None:
    assert parse_discount(reward_type, detail) is None


def test_worst_case_compounds_rates_and_sums_fixed_amounts() -> None:
    rewards = [
        RewardFacts("满减券", "满 69 减 20", stackable=True),
        RewardFacts("满减券", "满 199 减 40", stackable=True),
        RewardFacts("红包", "红包 20 元", stackable=True),
        RewardFacts("红包", "10 元红包", stackable=True),
        RewardFacts("免运费", "免配送费", stackable=True),
    ]
    pct, amount = worst_case(rewards)
    assert pct == pytest.approx((1 - (1 - 20 / 69) * (1 - 40 / 199)) * 100)
    assert amount == 30.0
    assert worst_case([RewardFacts("免运费", "免配送费", stackable=True)]) == (None, None)


# --- find_collisions --------------------------------------------------------------------------


def test_adjacent_dates_do_not_collide() -> None:
    other = campaign(start_date=date(2026, 12, 15), end_date=date(2026, 12, 31))
    assert find_collisions(DRAFT, [other]) == []


def test_one_shared_day_collides() -> None:
    other = campaign(start_date=date(2026, 12, 14), end_date=date(2026, 12, 31))
    found = only(find_collisions(DRAFT, [other]))
    assert (found.overlap_days, found.overlap_start, found.overlap_end) == (
        1, date(2026, 12, 14), date(2026, 12, 14),
    )  # fmt: skip
    assert found.reasons[0] == "日期重叠 1 天（12月14日）"


def test_overlap_across_new_year_names_the_years() -> None:
    draft = replace(DRAFT, end_date=date(2027, 1, 5))
    other = campaign(start_date=date(2026, 12, 20), end_date=date(2027, 2, 1))
    found = only(find_collisions(draft, [other]))
    assert found.overlap_days == 17
    assert found.reasons[0] == "日期重叠 17 天（2026年12月20日–2027年1月5日）"


def test_shared_product_alone_collides() -> None:
    found = only(find_collisions(DRAFT, [campaign(audience=("白领",))]))
    assert found.shared_audience == []
    assert found.shared_products == ["纸尿裤"]
    assert found.severity == "medium"
    assert "共同商品：纸尿裤" in found.reasons


def test_nothing_shared_does_not_collide() -> None:
    assert find_collisions(DRAFT, [campaign(audience=("白领",), products=("口红",))]) == []


def test_traditional_and_simplified_segments_match_in_the_drafts_wording() -> None:
    draft = replace(DRAFT, audience=("宝妈", "高价值会员", "新用户"), products=())
    other = campaign(audience=("寶 媽", "高價值會員", "新用戶"), products=("奶粉",))
    assert only(find_collisions(draft, [other])).shared_audience == ["宝妈", "高价值会员", "新用户"]


def test_products_match_across_width_and_case() -> None:
    draft = replace(DRAFT, audience=(), products=("ＳＫＵ-A 有機蔬菜",))
    other = campaign(audience=(), products=("sku-a有机蔬菜",))
    assert only(find_collisions(draft, [other])).shared_products == ["ＳＫＵ-A 有機蔬菜"]


def test_true_synonyms_match_and_near_ones_do_not() -> None:
    assert segment_key("沉默用户") == segment_key("沉睡用戶")
    assert segment_key("新客") == segment_key("新用户")
    assert segment_key("妈妈用户") == segment_key("寶媽")
    assert segment_key("流失用户") != segment_key("沉睡用户")
    assert segment_key("沉睡会员") != segment_key("沉睡用户")
    assert segment_key("母婴人群") != segment_key("宝妈")
    draft = replace(DRAFT, audience=("沉默用户",), products=())
    other = campaign(audience=("沉睡用户",), products=())
    assert only(find_collisions(draft, [other])).shared_audience == ["沉默用户"]


def test_different_business_lines_do_not_collide() -> None:
    assert find_collisions(DRAFT, [campaign(business_line="鲜丰到家")]) == []


def test_business_lines_compare_folded() -> None:
    assert len(find_collisions(DRAFT, [campaign(business_line="寶貝優選 ")])) == 1


@pytest.mark.parametrize("side", ["draft", "other"])
def test_a_missing_business_line_does_not_restrict(side: str) -> None:
    draft = replace(DRAFT, business_line=None) if side == "draft" else DRAFT
    other = campaign(business_line=None if side == "other" else "鲜丰到家")
    assert len(find_collisions(draft, [other])) == 1


def test_a_draft_without_a_business_line_says_it_crossed_lines() -> None:
    draft = replace(DRAFT, business_line=None)
    crossed = only(find_collisions(draft, [campaign(business_line="悦颜美妆")]))
    assert crossed.business_line == "悦颜美妆"
    assert "草案未填业务线，按所有业务线检查；对方属于「悦颜美妆」" in crossed.reasons
    # Nothing to say when the lines were compared, or when the other campaign names none.
    same = only(find_collisions(DRAFT, [campaign()]))
    unnamed = only(find_collisions(draft, [campaign(business_line=None)]))
    assert not [r for r in (*same.reasons, *unnamed.reasons) if "业务线" in r]


@pytest.mark.parametrize(("status", "collides"), [
    ("planned", True), ("running", True), ("completed", False), ("cancelled", False),
])  # fmt: skip
def test_only_planned_or_running_campaigns_collide(status: str, collides: bool) -> None:
    assert bool(find_collisions(DRAFT, [campaign(status=status)])) is collides


def test_the_draft_does_not_collide_with_itself() -> None:
    assert find_collisions(DRAFT, [campaign(id=DRAFT.id)]) == []
    # A draft not yet saved has no id, and every stored campaign is another one.
    assert len(find_collisions(replace(DRAFT, id=None), [campaign(id=DRAFT.id)])) == 1


@pytest.mark.parametrize(
    ("mine", "theirs", "risk"),
    [
        ((STACKABLE,), (STACKABLE,), True),
        ((STACKABLE,), (EXCLUSIVE,), False),
        ((EXCLUSIVE,), (STACKABLE,), False),
        ((STACKABLE,), (), False),
        ((EXCLUSIVE, STACKABLE), (EXCLUSIVE, STACKABLE), True),
    ],
)
def test_stacking_risk_needs_a_stackable_reward_on_both_sides(
    mine: tuple[RewardFacts, ...], theirs: tuple[RewardFacts, ...], risk: bool
) -> None:
    found = only(find_collisions(replace(DRAFT, rewards=mine), [campaign(rewards=theirs)]))
    assert found.stacking_risk is risk
    assert found.severity == ("high" if risk else "medium")
    if risk:
        assert found.worst_case_discount_pct == pytest.approx(36.0)  # 1 - 0.8 × 0.8
        assert found.reasons[-1] == "可叠加优惠叠加风险：最坏情况合计折扣约 36%"
    else:
        assert found.worst_case_discount_pct is None


def test_stacking_risk_stays_when_nothing_parses() -> None:
    gift = RewardFacts("赠品", "送限定化妆包", stackable=True)
    shipping = RewardFacts("免运费", "免配送费", stackable=True)
    draft = replace(DRAFT, rewards=(gift,))
    found = only(find_collisions(draft, [campaign(rewards=(shipping,))]))
    assert found.stacking_risk is True
    assert found.worst_case_discount_pct is None
    assert found.reasons[-1] == "可叠加优惠叠加风险：双方都有可叠加的奖励（优惠力度未能解析）"


def test_fixed_amounts_are_reported_beside_the_rate() -> None:
    red_packet = RewardFacts("红包", "新人红包 20 元", stackable=True)
    draft = replace(DRAFT, rewards=(STACKABLE, red_packet))
    found = only(find_collisions(draft, [campaign(rewards=(STACKABLE,))]))
    assert found.worst_case_amount_cny == 20.0
    assert found.reasons[-1] == (
        "可叠加优惠叠加风险：最坏情况合计折扣约 36%，另有固定金额优惠最多 20 元"
    )


def test_stacking_risks_first_then_longest_overlap() -> None:
    others = [
        campaign(id=10, title="短", end_date=date(2026, 12, 10)),
        campaign(id=11, title="长", start_date=date(2026, 12, 1)),
        campaign(id=12, title="叠加", end_date=date(2026, 12, 11), rewards=(STACKABLE,)),
    ]
    draft = replace(DRAFT, rewards=(STACKABLE,))
    assert [c.id for c in find_collisions(draft, others)] == [12, 11, 10]


# --- the demo data ----------------------------------------------------------------------------


def _facts(record: dict[str, Any]) -> CampaignFacts:
    return CampaignFacts(
        id=int(record["external_id"].removeprefix("demo-")),
        title=record["title"],
        business_line=record.get("business_line"),
        status=record["status"],
        start_date=date.fromisoformat(record["start_date"]),
        end_date=date.fromisoformat(record["end_date"]),
        audience=tuple(record["audience"]),
        products=tuple(record["products"]),
        rewards=tuple(
            RewardFacts(r["type"], r.get("detail", ""), r.get("stackable", False))
            for r in record["rewards"]
        ),
    )


@pytest.fixture(scope="module")
def demo() -> dict[int, CampaignFacts]:
    records = json.loads(DEMO.read_text(encoding="utf-8"))
    return {facts.id: facts for facts in map(_facts, records) if facts.id is not None}


@pytest.mark.parametrize(("a", "b", "days"), [(47, 51, 5), (48, 52, 13), (49, 53, 12)])
def test_demo_pairs_collide_with_stacking_risk(
    demo: dict[int, CampaignFacts], a: int, b: int, days: int
) -> None:
    for draft, other in ((demo[a], demo[b]), (demo[b], demo[a])):
        found = [c for c in find_collisions(draft, demo.values()) if c.id == other.id]
        assert len(found) == 1
        assert found[0].stacking_risk is True
        assert found[0].severity == "high"
        assert found[0].overlap_days == days


def test_demo_winter_return_vs_new_year_fair(demo: dict[int, CampaignFacts]) -> None:
    found = next(c for c in find_collisions(demo[47], demo.values()) if c.id == 51)
    assert found.shared_audience == ["沉睡用户", "价格敏感用户"]
    assert found.shared_products == ["有机蔬菜", "水果"]
    assert found.worst_case_discount_pct == pytest.approx(
        (1 - (1 - 20 / 69) * (1 - 40 / 199)) * 100
    )
    assert found.worst_case_amount_cny == 20.0  # the 20 元 红包; 免配送费 does not parse
    assert found.reasons == [
        "日期重叠 5 天（12月10日–12月14日）",
        "共同人群：沉睡用户、价格敏感用户",
        "共同商品：有机蔬菜、水果",
        "可叠加优惠叠加风险：最坏情况合计折扣约 43%，另有固定金额优惠最多 20 元",
    ]


@pytest.mark.parametrize(("draft", "others"), [(54, (48, 52)), (50, (47, 51))])
def test_demo_non_collisions(
    demo: dict[int, CampaignFacts], draft: int, others: tuple[int, ...]
) -> None:
    ids = {c.id for c in find_collisions(demo[draft], demo.values())}
    assert ids.isdisjoint(others)


def test_demo_completed_campaigns_never_collide(demo: dict[int, CampaignFacts]) -> None:
    for facts in demo.values():
        for found in find_collisions(facts, demo.values()):
            assert demo[found.id or 0].status in ("planned", "running")
