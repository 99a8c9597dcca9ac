"""Outcome queries: "ROI 低于预期的直播活动", "CAC went up" → a metric condition to check.

``parse_outcome`` finds metric mentions and one condition in a query; ``match_outcome`` says how
strongly a campaign's metrics satisfy it. The query's remaining words (``residual_query``) still
go to keyword and semantic search; the metric mention stays in them, as retros that discuss
ROI are the ones to read about an ROI miss, and the outcome filter does the rest.

Rising or falling is good or bad by the metric's direction: CAC 上涨 is worsened, CAC 下降 is
improved. Limits: one condition per query ("GMV 达标但 ROI 没达标" keeps its first clause);
negated trends ("没有提升") count as falling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from search.documents import MetricFact
from search.normalize import normalize

Condition = Literal["missed_target", "hit_target", "improved", "worsened"]
# name or alias → (catalog key, "higher" | "lower"), or None when the catalog does not know it
Lookup = Callable[[str], tuple[str, str] | None]

# improved / worsened need the lift over baseline (direction-adjusted, in percent) beyond this:
# smaller moves are noise. 5 % lost D30 retention 31 → 29.5 % (−4.8 %), which the search dev
# set (bench/data/search_devset.json, q81) counts as clearly worse.
LIFT_THRESHOLD_PCT = 3.0
# A campaign meeting the condition scores at least MIN_STRENGTH, rising linearly to 1 at this
# lift / overshoot / shortfall (percentage points), so matches rank by how clear they are.
FULL_STRENGTH_PCT = 50.0
MIN_STRENGTH = 0.5

_ASCII = re.compile(r"[a-z0-9]")

# Condition phrases, by kind; up/down become improved/worsened by the metric's direction.
_NEGATED = ("未能", "没能", "没有", "未", "没", "不", "无法")
_ACHIEVE = ("达成", "达到", "完成", "达标", "实现")
_GOAL = r"(?:(?:全部|所有|各项)?(?:目标|预期|指标|kpi))?"
_PHRASES: dict[str, tuple[str, ...]] = {
    "missed": (
        *(n + a for n in _NEGATED for a in _ACHIEVE),
        "不及预期", "不达预期", "不如预期", "差于预期", "落后于目标",
        "不理想", "不佳", "欠佳",
        "missed", "fell short", "fall short", "falls short", "short of target",
        "underperformed", "not met",
        "did not meet", "didn't meet", "did not hit", "didn't hit", "did not reach",
        "didn't reach", "failed to meet", "failed to hit", "failed to reach",
    ),
    "hit": (
        "达标", "达到目标", "达到预期", "完成目标", "完成了目标", "实现目标", "超额完成", "超额",
        "好于预期", "优于预期", "符合预期",
        "beat", "beats", "on target", "overachieved", "outperformed", "target met", "goal met",
    ),
    # The number above or below its target: a hit or a miss by the metric's direction
    # ("获客成本超出目标" is a CAC that missed its target, "CAC came in under target" one that
    # hit it), like rising and falling below.
    "above": (
        "超预期", "超出预期", "超过预期", "高于预期", "超过目标", "超出目标", "高于目标",
        "exceeded", "exceeds", "exceed", "surpassed", "above target", "above expectations",
        "above goal",
    ),
    "below": (
        "低于预期", "低于目标", "below target", "below expectations", "below goal",
        "under target",
    ),
    "bad": (
        "变差", "恶化", "变坏", "更差", "走差", "没有改善", "未改善",
        "worse", "worsened", "got worse", "deteriorated",
    ),
    "good": ("改善", "好转", "变好", "更好", "improved", "improve", "improvement", "better"),
    "up": (
        "提升", "提高", "增长", "上升", "上涨", "增加", "升高", "走高", "翻倍", "大涨", "暴涨",
        "went up", "goes up", "rose", "risen", "rise", "increased", "increase", "grew",
        "up", "higher", "climbed", "jumped", "surged", "soared",
    ),
    "down": (
        "下降", "下滑", "降低", "减少", "下跌", "走低", "回落", "大跌", "暴跌", "不升反降",
        "没有提升", "没提升", "未提升", "没有增长", "未增长",
        "went down", "dropped", "drop", "declined", "decline", "decreased", "decrease",
        "fell", "down", "lower", "shrank", "plunged",
    ),
    "strong": (
        "明显", "显著", "大幅", "significantly", "sharply", "strongly", "noticeably",
        "substantially",
    ),
}  # fmt: skip
# "met/hit/reached ... target": plain "hit" or "met" is too common a word to count alone.
_REACHED = (
    r"(?<![a-z0-9-])(?:met|hit|reached|achieved)"
    r"(?=(?:\s+[\w'-]+){0,3}?\s+(?:targets?|goals?)(?![a-z0-9-]))"
)
# Words that only frame the condition, removed from the residual query; target words only
# when the condition is about targets ("目标人群留存提升" keeps its 目标).
_FILLER = re.compile(
    r"(?:相比|相较|较|比|与)?(?:基线|基准)(?:相比)?|同比|环比"
    r"|(?<![a-z0-9])(?:campaigns?|that|which|where|whose|with|their|its|the|a|an|have|has|"
    r"had|did|got|get|were|was|is|are|than|baseline|vs|compared to)(?![a-z0-9])"
)
_TARGET_FILLER = re.compile(
    r"(?:全部|所有|各项)?(?:目标|预期)|(?<![a-z0-9])(?:targets?|goals?|expectations?)(?![a-z0-9])"
)
# "超额完成全部目标": every metric with a target, not just the key one.
_ALL_TARGETS = re.compile(
    r"(?:全部|所有|各项|每项|每个)(?:目标|指标|kpi)"
    r"|(?<![a-z0-9])(?:all (?:(?:their|its|the) )?(?:targets|goals|kpis)|every (?:target|goal))"
)
_PARTICLES = "的了得"
_EMPTY_CHUNKS = frozenset({"活动", "但", "但是", "且", "而", "并且", "and", "but"})

# Generic words: a word → (aliases the catalog knows, words to find in uncatalogued names).
_GENERIC: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "留存": (("次日留存", "7日留存", "30日留存"), ("留存",)),
    "留存率": (("次日留存", "7日留存", "30日留存"), ("留存",)),
    "retention": (("次日留存", "7日留存", "30日留存"), ("retention", "留存")),
    "成本": (("获客成本",), ("成本",)),
    "cost": (("获客成本",), ("cost", "成本")),
    "costs": (("获客成本",), ("cost", "成本")),
    "转化": (("转化率",), ("转化",)),
    "复购": (("复购率",), ("复购",)),
    "退货": (("退货率",), ("退货",)),
    "退款": (("退货率",), ("退款",)),
    "客单": (("客单价",), ("客单",)),
    "核销": (("核销率",), ("核销",)),
    "回报": (("roi",), ("回报",)),
    "投诉": (("投诉率",), ("投诉",)),
    "续费": (("续费率",), ("续费",)),
    "销量": (("订单量",), ("销量",)),
    "成交": (("gmv",), ("成交",)),
}
# Words that stand for "the campaign's numbers" in general: any metric.
_ANY_METRIC = ("效果", "表现", "数据", "业绩", "performance", "results", "numbers", "metrics")
_MAX_ALIAS_CHARS = 24


@dataclass(frozen=True, slots=True)
class OutcomeIntent:
    """What an outcome query asks: which metrics (empty = the key metric / any) and how."""

    metric_keys: tuple[str, ...]
    condition: Condition
    residual_query: str
    # Words looked for in the names of uncatalogued metrics ("留存" finds "90日留存").
    metric_words: tuple[str, ...] = ()
    # With no metric named: judge every metric with a target, not only the key metric.
    all_targets: bool = False


@dataclass(frozen=True, slots=True)
class MetricMention:
    """A metric named in a query: where (in the normalized text), which keys, which direction."""

    start: int
    end: int
    keys: tuple[str, ...]
    direction: str  # "higher" | "lower"; "higher" when unknown
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Phrase:
    start: int
    end: int
    kind: str


def parse_outcome(
    query: str, lookup: Lookup, metric_aliases: Iterable[str] | None = None
) -> OutcomeIntent | None:
    """Return the outcome a query asks about, or None when it names no outcome.

    Pass ``metric_aliases`` (every catalog name and alias) to scan with one regex; without it,
    every substring is tried with ``lookup``. A rising/falling word needs a metric to apply to
    ("用户增长活动" is no outcome query); a target or good/bad word stands alone.
    """
    text, offsets = normalize(query)
    mentions = find_metrics(text, lookup, metric_aliases)
    masked = list(text)
    for m in mentions:  # a condition word inside a metric name is not a condition
        masked[m.start : m.end] = " " * (m.end - m.start)
    phrases = [
        _Phrase(p.start(), p.end(), _kind(p)) for p in _phrase_pattern().finditer("".join(masked))
    ]
    conditions = [p for p in phrases if p.kind != "strong"]
    if not conditions and phrases and mentions:
        conditions = [_Phrase(phrases[0].start, phrases[0].end, "good")]  # "留存明显"
    if not conditions:
        return None
    primary = conditions[0]
    bound = [m for m in mentions if _nearest(m, conditions) is primary]
    if primary.kind in ("up", "down"):
        if not bound:
            return None
        anchor = min(bound, key=lambda m: _gap(m, primary))
        condition = _trend(primary.kind, anchor.direction)
        bound = [m for m in bound if _trend(primary.kind, m.direction) == condition]
    elif primary.kind in ("above", "below"):
        # No metric named: "超过预期" is read as the campaign's numbers beating the target.
        anchor_direction = min(bound, key=lambda m: _gap(m, primary)).direction if bound else ""
        condition = _versus_target(primary.kind, anchor_direction)
        bound = [m for m in bound if _versus_target(primary.kind, m.direction) == condition]
    else:
        condition = _FIXED[primary.kind]
    fillers = [_FILLER]
    if condition in ("missed_target", "hit_target"):
        fillers.append(_TARGET_FILLER)
    removed = [(p.start, p.end) for p in phrases]
    removed += [(f.start(), f.end()) for pattern in fillers for f in pattern.finditer(text)]
    return OutcomeIntent(
        metric_keys=tuple(dict.fromkeys(k for m in bound for k in m.keys)),
        condition=condition,
        residual_query=_residual(query, text, offsets, removed),
        metric_words=tuple(dict.fromkeys(w for m in bound for w in m.words)),
        all_targets=condition in ("missed_target", "hit_target")
        and bool(_ALL_TARGETS.search(text)),
    )


def find_metrics(
    text: str, lookup: Lookup, metric_aliases: Iterable[str] | None = None
) -> list[MetricMention]:
    """Return the metrics named in normalized text, longest match first, left to right."""
    mentions: list[MetricMention] = []
    if metric_aliases is not None:
        for found in _alias_pattern(tuple(sorted(set(metric_aliases)))).finditer(text):
            if not _bounded(text, found.start(), found.end()):
                continue
            if (mention := _resolve(found[0], found.start(), lookup)) is not None:
                mentions.append(mention)
        return mentions
    i = 0
    while i < len(text):  # every substring the lookup knows, longest at each position
        for end in range(min(len(text), i + _MAX_ALIAS_CHARS), i, -1):
            name = text[i:end]
            if name != name.strip() or not _bounded(text, i, end):
                continue
            if (mention := _resolve(name, i, lookup)) is not None:
                mentions.append(mention)
                i = end
                break
        else:
            i += 1
    return mentions


def match_outcome(intent: OutcomeIntent, metrics: Sequence[MetricFact]) -> float:
    """Return how strongly these metrics satisfy the intent: 0 (not at all) or MIN_STRENGTH–1.

    Named metrics match by catalog key, or an uncatalogued metric by a word of its name.
    Without named metrics, targets are judged on the key metric (marked ``is_key``, else the first
    with a target), or
    on all of them with ``all_targets`` (the weakest decides), and trends on any metric.
    Otherwise the strongest matching metric decides.
    """
    if intent.metric_keys or intent.metric_words:
        chosen = [m for m in metrics if _is_named(m, intent)]
    elif intent.condition in ("missed_target", "hit_target"):
        chosen = [m for m in metrics if m.target is not None]
        if intent.all_targets:
            return min((_strength(intent.condition, m) for m in chosen), default=0.0)
        chosen = [m for m in chosen if m.is_key] or chosen[:1]
    else:
        chosen = list(metrics)
    return max((_strength(intent.condition, m) for m in chosen), default=0.0)


_FIXED: dict[str, Condition] = {
    "missed": "missed_target",
    "hit": "hit_target",
    "good": "improved",
    "bad": "worsened",
}


def _trend(kind: str, direction: str) -> Condition:
    rising_is_good = direction != "lower"
    return "improved" if (kind == "up") == rising_is_good else "worsened"


def _versus_target(kind: str, direction: str) -> Condition:
    higher_is_better = direction != "lower"
    return "hit_target" if (kind == "above") == higher_is_better else "missed_target"


def _gap(m: MetricMention, p: _Phrase) -> int:
    return max(p.start - m.end, m.start - p.end, 0)


def _nearest(m: MetricMention, conditions: list[_Phrase]) -> _Phrase:
    return min(conditions, key=lambda p: _gap(m, p))


def _strength(condition: Condition, m: MetricFact) -> float:
    if condition == "missed_target":
        ok = m.hit is False
        amount = 100 - m.attainment_pct if m.attainment_pct is not None else 0.0
    elif condition == "hit_target":
        ok = m.hit is True
        amount = m.attainment_pct - 100 if m.attainment_pct is not None else 0.0
    elif m.lift_pct is None:
        return 0.0
    elif condition == "improved":
        ok, amount = m.lift_pct > LIFT_THRESHOLD_PCT, m.lift_pct
    else:
        ok, amount = m.lift_pct < -LIFT_THRESHOLD_PCT, -m.lift_pct
    if not ok:
        return 0.0
    share = min(max(amount, 0.0) / FULL_STRENGTH_PCT, 1.0)
    return MIN_STRENGTH + (1 - MIN_STRENGTH) * share


def _is_named(m: MetricFact, intent: OutcomeIntent) -> bool:
    if m.key is not None:
        return m.key in intent.metric_keys
    name = normalize(m.name)[0]
    return any(word in name for word in intent.metric_words)


def _resolve(name: str, start: int, lookup: Lookup) -> MetricMention | None:
    """Return the mention a name makes: a catalog alias, a generic word or "any metric"."""
    end = start + len(name)
    if name in _ANY_METRIC:
        return MetricMention(start, end, (), "higher", ())
    if name in _GENERIC:
        aliases, words = _GENERIC[name]
        found = [hit for alias in aliases if (hit := lookup(alias)) is not None]
        direction = found[0][1] if found else "higher"
        return MetricMention(start, end, tuple(k for k, _ in found), direction, words)
    hit = lookup(name)
    if hit is None:
        return None
    return MetricMention(start, end, (hit[0],), hit[1], (name,))


def _bounded(text: str, start: int, end: int) -> bool:
    """Return whether text[start:end] cuts no word in two: no ASCII word, no 活动."""
    before = start > 0 and _ASCII.match(text[start - 1]) and _ASCII.match(text[start])
    after = end < len(text) and _ASCII.match(text[end]) and _ASCII.match(text[end - 1])
    # "节日活动", "5月活动": the 日活 (DAU) and 月活 (MAU) there are not metrics.
    campaign = text[end - 1 : end + 1] == "活动"
    return not before and not after and not campaign


def _literal(phrase: str) -> str:
    """Return a regex for a phrase: flexible spaces, ASCII ends kept to whole (hyphenated) words."""
    body = r"[\s_\-]+".join(re.escape(part) for part in re.split(r"[\s_\-]+", phrase))
    head = r"(?<![a-z0-9-])" if _ASCII.match(phrase[0]) else ""
    tail = r"(?![a-z0-9-])" if _ASCII.match(phrase[-1]) else ""
    return head + body + tail


@lru_cache(maxsize=8)
def _alias_pattern(aliases: tuple[str, ...]) -> re.Pattern[str]:
    words = {*(normalize(a)[0] for a in aliases), *_GENERIC, *_ANY_METRIC}
    return re.compile("|".join(_literal(w) for w in sorted(words, key=len, reverse=True)))


@lru_cache(maxsize=1)
def _phrase_pattern() -> re.Pattern[str]:
    entries = [(_REACHED, "hit", 99)]
    for kind, phrases in _PHRASES.items():
        entries += [(_literal(p), kind, len(p)) for p in phrases]
    # Longest first, so "没有达成" wins over "达成" and "fell short" over "fell".
    entries.sort(key=lambda entry: -entry[2])
    targets = ("missed", "hit", "above", "below")
    groups = [f"(?P<{kind}_{i}>{src}{_GOAL if kind in targets else ''})"
              for i, (src, kind, _) in enumerate(entries)]  # fmt: skip
    return re.compile("|".join(groups))


def _kind(found: re.Match[str]) -> str:
    return (found.lastgroup or "").rsplit("_", 1)[0]


def _residual(
    query: str, text: str, offsets: list[int] | None, removed: list[tuple[int, int]]
) -> str:
    """Return the query without the removed spans of its normalized text, in its own script."""
    gone = [False] * len(text)
    for start, end in removed:
        # Particles tied to a removed word go with it: "提升明显的会员活动" → "会员活动".
        while end < len(text) and text[end] in _PARTICLES:
            end += 1
        while start > 0 and text[start - 1] in _PARTICLES:
            start -= 1
        gone[start:end] = [True] * (end - start)
    dropped = [False] * len(query)
    for i, is_gone in enumerate(gone):
        if is_gone:
            dropped[offsets[i] if offsets is not None else i] = True
    kept = "".join(" " if drop else ch for ch, drop in zip(query, dropped, strict=True))
    return " ".join(c for c in kept.split() if c.lower() not in _EMPTY_CHUNKS)
