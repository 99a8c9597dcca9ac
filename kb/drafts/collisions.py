"""Collisions between a draft and the campaigns planned or running at the same time.

Campaigns that run together for the same users compete (users go to the biggest discount), and
stackable rewards pile up into 超级优惠 that 羊毛党 exploit. Pure functions over plain data: the
caller loads the campaigns and builds ``CampaignFacts``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from kb.campaigns.segments import label_key, segment_key
from kb.vocab import ACTIVE_STATUSES, Severity
from search.normalize import fold as fold_text


@dataclass(frozen=True, slots=True)
class RewardFacts:
    """A reward: its type, the detail as written, and whether it stacks with others."""

    type: str
    detail: str
    stackable: bool


@dataclass(frozen=True, slots=True)
class CampaignFacts:
    """What a collision check needs to know about a campaign (the draft or another one)."""

    id: int | None
    title: str
    business_line: str | None
    status: str
    start_date: date
    end_date: date
    audience: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    rewards: tuple[RewardFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class Discount:
    """A parsed reward: rate off the price (0..1), a fixed amount in CNY, the text it came from."""

    rate: float | None
    amount_cny: float | None
    text: str


@dataclass(frozen=True, slots=True)
class Collision:
    """Another campaign competing with the draft for the same users at the same time."""

    id: int | None
    title: str
    business_line: str | None
    overlap_days: int
    overlap_start: date
    overlap_end: date
    shared_audience: list[str]  # in the draft's wording
    shared_products: list[str]
    stacking_risk: bool
    worst_case_discount_pct: float | None
    worst_case_amount_cny: float | None
    reasons: list[str]
    severity: Severity


def find_collisions(draft: CampaignFacts, others: Iterable[CampaignFacts]) -> list[Collision]:
    """Return the planned or running campaigns the draft collides with, stacking risks first.

    A collision needs overlapping dates (inclusive) and at least one shared audience segment or
    product; when both campaigns name a business line, they must name the same one (a draft
    without one is checked against every line, and each such collision says so). The draft
    itself (same id) and completed or cancelled campaigns never collide. Ties are ordered by
    overlap length (longest first), then start of the overlap and title.
    """
    found = [c for other in others if (c := _collide(draft, other)) is not None]
    found.sort(key=lambda c: (not c.stacking_risk, -c.overlap_days, c.overlap_start, c.title))
    return found


def _collide(draft: CampaignFacts, other: CampaignFacts) -> Collision | None:
    if other.status not in ACTIVE_STATUSES:
        return None
    if draft.id is not None and other.id == draft.id:
        return None
    line, other_line = label_key(draft.business_line or ""), label_key(other.business_line or "")
    if line and other_line and line != other_line:
        return None
    start, end = max(draft.start_date, other.start_date), min(draft.end_date, other.end_date)
    if start > end:
        return None
    audience = _shared(draft.audience, other.audience, segment_key)
    products = _shared(draft.products, other.products, label_key)
    if not audience and not products:
        return None
    days = (end - start).days + 1
    risk = any(r.stackable for r in draft.rewards) and any(r.stackable for r in other.rewards)
    pct = amount = None
    if risk:
        pct, amount = worst_case(r for r in (*draft.rewards, *other.rewards) if r.stackable)
    reasons = [f"日期重叠 {days} 天（{_span(start, end)}）"]
    if not line and other_line:
        # Without the draft's business line a collision may cross brands: say so, not guess.
        reasons.append(f"草案未填业务线，按所有业务线检查；对方属于「{other.business_line}」")
    if audience:
        reasons.append(f"共同人群：{'、'.join(audience)}")
    if products:
        reasons.append(f"共同商品：{'、'.join(products)}")
    if risk:
        reasons.append(_stacking_reason(pct, amount))
    return Collision(
        id=other.id,
        title=other.title,
        business_line=other.business_line,
        overlap_days=days,
        overlap_start=start,
        overlap_end=end,
        shared_audience=audience,
        shared_products=products,
        stacking_risk=risk,
        worst_case_discount_pct=pct,
        worst_case_amount_cny=amount,
        reasons=reasons,
        severity="high" if risk else "medium",
    )


def _shared(mine: Iterable[str], theirs: Iterable[str], key: Callable[[str], str]) -> list[str]:
    their_keys = {key(label) for label in theirs}
    found: dict[str, str] = {}
    for label in mine:
        k = key(label)
        if k and k in their_keys:
            found.setdefault(k, label)
    return list(found.values())


def _span(start: date, end: date) -> str:
    def day(d: date, with_year: bool) -> str:
        return f"{d.year}年{d.month}月{d.day}日" if with_year else f"{d.month}月{d.day}日"

    with_year = start.year != end.year  # "12月20日–1月5日" would read as going backwards
    if start == end:
        return day(start, False)
    return f"{day(start, with_year)}–{day(end, with_year)}"


def _stacking_reason(pct: float | None, amount: float | None) -> str:
    head = "可叠加优惠叠加风险："
    money = f"{_number(amount)} 元" if amount is not None else ""
    if pct is not None:
        extra = f"，另有固定金额优惠最多 {money}" if money else ""
        return f"{head}最坏情况合计折扣约 {pct:.0f}%{extra}"
    if money:
        return f"{head}固定金额优惠合计最多 {money}（无法折算为折扣率）"
    return f"{head}双方都有可叠加的奖励（优惠力度未能解析）"


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def worst_case(rewards: Iterable[RewardFacts]) -> tuple[float | None, float | None]:
    """Return the worst-case combined discount in percent and the fixed amounts in CNY.

    Assumes every reward given is used on the same order, at the threshold where it is deepest:
    rates compound as 1 - Π(1 - rate) (a 满减 counts as its rate at the threshold, its amount is
    not counted again). Fixed amounts with no rate (立减 N 元, 红包) cannot become a rate without
    a price, so they are summed separately. Rewards that do not parse (免运费, 赠品) are left out.
    Either value is None when nothing contributes to it.
    """
    keep = 1.0
    any_rate = False
    amount: float | None = None
    for reward in rewards:
        discount = parse_discount(reward.type, reward.detail)
        if discount is None:
            continue
        if discount.rate is not None:
            keep *= 1 - discount.rate
            any_rate = True
        elif discount.amount_cny is not None:
            amount = (amount or 0.0) + discount.amount_cny
    return ((1 - keep) * 100 if any_rate else None), amount


_NUM = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
_CURRENCY = r"(nt\$|hk\$|us\$|s\$|\$|¥|rmb|cny|人民币)?"
_CNY = {"", "¥", "rmb", "cny", "人民币"}
_CN_DIGITS = dict(zip("一二三四五六七八九", range(1, 10), strict=True)) | {"两": 2}
# "满 199 减 40", "每满100减15", "滿 NT$2,000 折 NT$200" (折 as a verb: take off).
_THRESHOLD_CUT = re.compile(
    rf"每?满\s*{_CURRENCY}\s*{_NUM}\s*元?\s*[减折]\s*{_CURRENCY}\s*{_NUM}\s*元?"
)
_SECOND_ITEM = re.compile(
    r"第\s*(?:二|2)\s*件\s*(?:(半价)|(\d+(?:\.\d+)?)\s*折|([一二三四五六七八九]{1,2})\s*折)"
)
_BUY_GET = re.compile(r"买\s*([一二两三四五1-9])\s*送\s*([一二两三1-9])(?![\d.])")
_FOLD_NUM = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*折")
_FOLD_CN = re.compile(r"([一二两三四五六七八九][一二三四五六七八九]?)\s*折")
_HALF = re.compile(r"半价")
_PERCENT = re.compile(rf"{_NUM}\s*%")
_LOTTERY = re.compile(r"(概率|几率|中奖率)\s*$")
# Thresholds and spend are not amounts off: "满 88 元送大米", "每消费 1 元得 2 积分".
_NOT_AMOUNT = re.compile(rf"(满|消费|spend|over)\s*{_CURRENCY}\s*{_NUM}\s*元?")
_AMOUNT = re.compile(rf"(?:¥|rmb|cny)\s*{_NUM}|{_NUM}(?:\s*[-–—~～至到]\s*{_NUM})?\s*[元块]")
# A bare "1 元" is usually a price (体验课 1 元), not money off; only these words make it a reward.
_AMOUNT_CUES = ("减", "降", "红包", "返", "抵", "无门槛", "现金", "补贴", "立省", "津贴", "礼金")
_AMOUNT_TYPES = ("红包", "现金返还", "返现")


def parse_discount(reward_type: str, detail: str) -> Discount | None:
    """Parse how deep a reward cuts, or return None when the text says no rate or CNY amount.

    Forms: N折 / 八折 / 八五折 / 8.5折 / 85折 / 打7折; 满X减Y and 每满X减Y (rate Y/X, the deepest
    point); 第二件半价 / 第二件N折 (half of the second item's cut: 25 % for 半价); 买N送M; 半价;
    N% (off, 返现, 积分 rebates; not lottery odds); fixed amounts "立减 10 元", "10 元红包",
    "红包 5–20 元" (the top of a range). Several forms in one detail are alternatives, so the
    deepest rate and the largest amount are kept. Amounts in other currencies (NT$, HK$, US$)
    give a rate when both sides of a 满减 are known, never an amount (no exchange rate here).
    Chinese numerals are read only before 折. Free shipping, gifts and points multipliers: None.
    """
    text = fold_text(detail.strip() or reward_type)
    rates: list[float] = []
    amounts: list[float] = []
    found: list[str] = []

    def take(match: re.Match[str], rate: float | None, amount: float | None = None) -> None:
        nonlocal text
        if rate is not None and 0 < rate < 1:
            rates.append(rate)
        if amount is not None and amount > 0:
            amounts.append(amount)
        found.append(re.sub(r"\s+", "", match.group(0)))
        text = text[: match.start()] + " " * len(match.group(0)) + text[match.end() :]

    for m in list(_THRESHOLD_CUT.finditer(text)):
        threshold, cut = _float(m.group(2)), _float(m.group(4))
        cny = (m.group(3) or m.group(1) or "") in _CNY
        take(m, cut / threshold if threshold else None, cut if cny else None)
    for m in list(_SECOND_ITEM.finditer(text)):
        if m.group(1):
            rate: float | None = 0.5
        elif m.group(2):
            rate = _fold_rate(m.group(2))
        else:
            rate = _cn_rate(m.group(3))
        # Only the second of two items is cut, so the two together are cut half as deep.
        take(m, None if rate is None else rate / 2)
    for m in list(_BUY_GET.finditer(text)):
        paid, free = _cn_int(m.group(1)), _cn_int(m.group(2))
        take(m, free / (paid + free))
    for m in list(_FOLD_NUM.finditer(text)):
        take(m, _fold_rate(m.group(1)))
    for m in list(_FOLD_CN.finditer(text)):
        take(m, _cn_rate(m.group(1)))
    for m in list(_HALF.finditer(text)):
        take(m, 0.5)
    for m in list(_PERCENT.finditer(text)):
        if not _LOTTERY.search(text[: m.start()]):
            take(m, _float(m.group(1)) / 100)
    cue = any(c in text for c in _AMOUNT_CUES) or any(t in reward_type for t in _AMOUNT_TYPES)
    if cue:
        spendless = _NOT_AMOUNT.sub(lambda m: " " * len(m.group(0)), text)
        for m in _AMOUNT.finditer(spendless):
            values = [_float(g) for g in m.groups() if g]
            take(m, None, max(values))
    if not rates and not amounts:
        return None
    return Discount(
        rate=max(rates) if rates else None,
        amount_cny=max(amounts) if amounts else None,
        text="；".join(found),
    )


def _float(number: str) -> float:
    return float(number.replace(",", ""))


def _cn_int(digit: str) -> int:
    return _CN_DIGITS.get(digit) or int(digit)


def _cn_rate(numerals: str) -> float:
    """Read the rate off of "八折" (0.2) or "八五折" (0.15)."""
    digits = [_CN_DIGITS[d] for d in numerals]
    if len(digits) == 1:
        return (10 - digits[0]) / 10
    return (100 - digits[0] * 10 - digits[1]) / 100


def _fold_rate(number: str) -> float | None:
    """Read the rate off of "N折": 8 → 0.2, 8.5 → 0.15, 85 → 0.15; None if it is not one."""
    value = float(number)
    # Subtract before dividing: (10 - 8) / 10 is exactly 0.2, 1 - 0.8 is not.
    if "." in number or len(number) == 1:
        return (10 - value) / 10
    if len(number) == 2 and value % 10:  # "85折"; "10折" or "50折" is no discount anyone writes
        return (100 - value) / 100
    return None
