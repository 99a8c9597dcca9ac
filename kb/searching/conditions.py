"""Metric conditions of a search: "ROI ≥ 2", "GMV 达成率 < 80%", or the URL form roi.actual>=2.

A condition names a catalog metric (by any of its names, kb/campaigns/metrics.py) or 主要指标
(each campaign's key metric), the value compared (实际值, 目标值, 达成率 %, 较基线 %), a comparison
and a number typed as people type them (50万, 1.2亿元, 3万人, 3.5%: kb/parsing.py). Actual and
target values are compared in the metric's base unit, as the index holds them: money in 元,
counts in single items, % and 倍 as they are, so "GMV 实际值 ≥ 50万" finds a GMV stored as
120 万元 and one stored as 1.2 亿元. The search form builds one from four boxes; links and the
API may write either text form; each is kept in the URL in the canonical form ``roi.actual>=2``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Literal

from kb import parsing
from kb.campaigns import metrics as catalog
from kb.models import Campaign
from kb.parsing import format_input, parse_to_base
from kb.searching.documents import metric_fact
from kb.vocab import COMPARISONS, METRIC_FIELDS
from kb.web.rendering import format_cny, format_number, format_pct
from search.keyword import MetricRange
from search.normalize import fold, normalize

Field = Literal["actual", "target", "attain", "lift"]
Comparison = Literal[">=", "<=", ">", "<", "="]
KEY_METRIC = "key"
KEY_METRIC_LABEL = "主要指标"
# The campaign's budget (元): no metric, so no target or attainment; filtered from the database.
BUDGET = "budget"
BUDGET_LABEL = "预算"
_BUDGET_NAMES = ("预算", "总预算", "活动预算", "budget")

# The canonical form: a catalog key (or "key"), a field, a comparison, a number.
_CODE = re.compile(r"^([a-z0-9_]+)\.(actual|target|attain|lift)\s*(>=|<=|>|<|=)\s*(.+)$")
# Written like the canonical form, but with some other word after the dot.
_DOTTED = re.compile(r"^[a-z0-9_]+\.([a-z_]*)\s*(?:>=|<=|>|<|=)")
# Every comparison word, once, with where it stands: "before" the number ("GMV 超过 50万",
# "超过 50万的 GMV") or "after" it ("50万以上的 GMV", "预算 100万 以上"). 达到 means "at least"
# (a GMV that reached 1亿 may have passed it); 为 and = mean exactly. Longest first when read.
Place = Literal["before", "after"]
COMPARISON_WORDS: tuple[tuple[str, Comparison, Place], ...] = (
    (">=", ">=", "before"), ("≥", ">=", "before"), ("⩾", ">=", "before"),
    ("大于等于", ">=", "before"), ("不低于", ">=", "before"), ("不少于", ">=", "before"),
    ("不小于", ">=", "before"), ("至少", ">=", "before"), ("达到", ">=", "before"),
    ("at least", ">=", "before"), ("no less than", ">=", "before"),
    ("以上", ">=", "after"), ("及以上", ">=", "after"), ("或以上", ">=", "after"),
    ("or more", ">=", "after"), ("or above", ">=", "after"), ("and above", ">=", "after"),
    ("<=", "<=", "before"), ("≤", "<=", "before"), ("⩽", "<=", "before"),
    ("小于等于", "<=", "before"), ("不高于", "<=", "before"), ("不超过", "<=", "before"),
    ("不大于", "<=", "before"), ("至多", "<=", "before"), ("at most", "<=", "before"),
    ("no more than", "<=", "before"),
    ("以下", "<=", "after"), ("及以下", "<=", "after"), ("或以下", "<=", "after"),
    ("以内", "<=", "after"), ("or less", "<=", "after"), ("or below", "<=", "after"),
    ("==", "=", "before"), ("=", "=", "before"), ("＝", "=", "before"), ("等于", "=", "before"),
    ("为", "=", "before"), ("equals", "=", "before"),
    (">", ">", "before"), ("＞", ">", "before"), ("大于", ">", "before"), ("高于", ">", "before"),
    ("超过", ">", "before"), ("多于", ">", "before"), ("over", ">", "before"),
    ("above", ">", "before"), ("more than", ">", "before"), ("greater than", ">", "before"),
    ("higher than", ">", "before"),
    ("<", "<", "before"), ("＜", "<", "before"), ("小于", "<", "before"), ("低于", "<", "before"),
    ("少于", "<", "before"), ("不到", "<", "before"), ("不足", "<", "before"),
    ("under", "<", "before"), ("below", "<", "before"),
    ("less than", "<", "before"), ("lower than", "<", "before"),
)  # fmt: skip
_MEANING = {word: op for word, op, _ in COMPARISON_WORDS}
# Superlatives ("ROI 最高的直播", "lowest CAC"): no threshold, an order. "higher"/"lower" say
# which way the number goes; "best"/"worst" go by the metric's direction (CAC 最好 is the lowest).
Superlative = Literal["higher", "lower", "best", "worst"]
SUPERLATIVE_WORDS: tuple[tuple[str, Superlative], ...] = (
    ("最高", "higher"), ("最多", "higher"), ("最大", "higher"), ("highest", "higher"),
    ("most", "higher"), ("biggest", "higher"), ("largest", "higher"), ("top", "higher"),
    ("最低", "lower"), ("最少", "lower"), ("最小", "lower"), ("lowest", "lower"),
    ("least", "lower"), ("fewest", "lower"), ("smallest", "lower"),
    ("最好", "best"), ("最佳", "best"), ("最优", "best"), ("best", "best"),
    ("最差", "worst"), ("最糟", "worst"), ("最惨", "worst"), ("worst", "worst"),
)  # fmt: skip
_SUPERLATIVE = dict(SUPERLATIVE_WORDS)


def _alternation(words: Iterable[str], *, suffix: bool = False) -> str:
    """Return a regex alternation of words, longest first; Latin words only as whole words.

    ``suffix``: the words follow a number directly (units: "500k"), so only their end is bound.
    """
    parts = []
    for word in sorted(set(words), key=lambda w: (-len(w), w)):
        pattern = r"\s+".join(re.escape(piece) for piece in word.split())
        if not suffix and word[0].isascii() and word[0].isalnum():
            pattern = rf"(?<![a-z0-9]){pattern}"
        if word[-1].isascii() and word[-1].isalnum():
            pattern = rf"{pattern}(?![a-z0-9])"
        parts.append(pattern)
    return "|".join(parts)


_NATURAL = re.compile(
    r"^(?P<left>.+?)\s*(?P<op>"
    + _alternation(word for word, _, place in COMPARISON_WORDS if place == "before")
    + r")\s*(?P<value>.+)$"
)
_FIELD_WORDS: tuple[tuple[str, Field], ...] = (
    ("达成率", "attain"), ("完成率", "attain"), ("达成", "attain"), ("attain", "attain"),
    ("较基线", "lift"), ("比基线", "lift"), ("提升", "lift"), ("增幅", "lift"), ("lift", "lift"),
    ("实际值", "actual"), ("实际", "actual"), ("actual", "actual"),
    ("目标值", "target"), ("目标", "target"), ("target", "target"),
)  # fmt: skip
_FIELD_MEANING = {fold(word): meaning for word, meaning in _FIELD_WORDS}
_KEY_NAMES = {"主要指标", "关键指标", "key", "核心指标"}
EXAMPLE = "如 ROI ≥ 2、GMV 达成率 < 80%、主要指标 达成率 ≥ 100%"


class ConditionError(ValueError):
    """A condition that cannot be read, with the Chinese reason and the box it belongs to."""

    def __init__(self, message: str, box: str = "mf_value") -> None:
        super().__init__(message)
        self.message = message
        self.box = box


@dataclass(frozen=True, slots=True)
class MetricCondition:
    """One metric condition of a search."""

    key: str
    field: Field
    op: Comparison
    value: float

    @property
    def code(self) -> str:
        """The canonical URL form: roi.actual>=2."""
        return f"{self.key}.{self.field}{self.op}{format_input(self.value)}"

    @property
    def label(self) -> str:
        """The condition in words: "ROI 实际值 ≥ 2", "主要指标 达成率 ＜ 80%"."""
        unit = "%" if self.field in ("attain", "lift") else ""
        shown = format_input(self.value, amount=not unit)
        return f"{_subject_label(self.key, self.field)} {COMPARISONS[self.op]} {shown}{unit}"

    def bounds(self) -> tuple[float | None, float | None]:
        """Return the range this condition means: low inclusive, high exclusive, None open."""
        value, above = self.value, math.nextafter(self.value, math.inf)
        return {
            ">=": (value, None),
            ">": (above, None),
            "<": (None, value),
            "<=": (None, above),
            "=": (value, above),
        }[self.op]

    def met_by(self, campaign: Campaign) -> str | None:
        """Say which value of ``campaign`` meets this condition, in words; None when none does.

        "GMV 实际值 1.39 亿元 ≥ 50万", "主要指标 GMV 达成率 116% ≥ 100%", "预算 300 万元 ≥ 50万":
        the campaign's own number in its own unit (万/亿 as the campaign page writes it), then the
        condition's comparison and threshold, so a result card shows why the filter kept it.
        """
        threshold = f"{COMPARISONS[self.op]} {self.label.rsplit(' ', 1)[-1]}"
        low, high = self.bounds()

        def meets(value: float) -> bool:
            return (low is None or value >= low) and (high is None or value < high)

        shown = _value_in_words(self.key, self.field, campaign, meets)
        return None if shown is None else f"{shown} {threshold}"

    def to_range(self) -> MetricRange:
        """Return the index's range for this condition (a budget is no metric: ValueError)."""
        if self.key == BUDGET:
            raise ValueError("a budget condition is filtered from the database, not the index")
        low, high = self.bounds()
        return MetricRange(key=self.key, field=self.field, low=low, high=high)


@dataclass(frozen=True, slots=True)
class MetricOrder:
    """A superlative typed in the search box: "ROI 最高的直播", "获客成本最低", "lowest CAC".

    It orders the results by the value, the words deciding which campaigns are in scope:
    "ROI 最高的直播" lists the live-stream campaigns by ROI, highest first, then those that
    record none. Alone ("ROI 最高") it keeps the campaigns that have the value (``to_range``).
    """

    key: str
    field: Field
    descending: bool

    @property
    def op(self) -> Comparison:
        """The comparison whose listing runs the same way (≥: highest first)."""
        return ">=" if self.descending else "<="

    @property
    def code(self) -> str:
        """A canonical form: roi.actual:desc."""
        return f"{self.key}.{self.field}:{'desc' if self.descending else 'asc'}"

    @property
    def label(self) -> str:
        """The order in words: "按 ROI 实际值从高到低"."""
        subject = _subject_label(self.key, self.field)
        way = "从高到低" if self.descending else "从低到高"
        return f"按{' ' if subject[0].isascii() else ''}{subject}{way}"

    def bounds(self) -> tuple[float | None, float | None]:
        """Return the range this order keeps: any value."""
        return None, None

    def met_by(self, campaign: Campaign) -> str | None:
        """Say the value the results are ordered by ("ROI 实际值 3.2 倍"); None when it has none."""
        return _value_in_words(self.key, self.field, campaign, lambda value: True)

    def to_range(self) -> MetricRange:
        """Return the index's range of the campaigns that have the value (a budget: ValueError)."""
        if self.key == BUDGET:
            raise ValueError("a budget order is read from the database, not the index")
        return MetricRange(key=self.key, field=self.field)


def _subject_label(key: str, field: Field) -> str:
    """Return "ROI 实际值", "主要指标 达成率", "预算": what a condition or an order compares."""
    if key == BUDGET:
        return BUDGET_LABEL
    if key == KEY_METRIC:
        name = KEY_METRIC_LABEL
    else:
        entry = catalog.by_key(key)
        name = entry.label if entry else key
    return f"{name} {METRIC_FIELDS[field]}"


def _value_in_words(
    key: str, field: Field, campaign: Campaign, meets: Callable[[float], bool]
) -> str | None:
    """Return the campaign's value of this key and field that ``meets`` accepts, in words.

    "GMV 实际值 1.39 亿元", "主要指标 GMV 达成率 116%", "预算 300 万元": its own number in its own
    unit (万/亿 as the campaign page writes it); None when it has no such value.
    """
    if key == BUDGET:
        budget = campaign.budget_cny
        return (
            f"{BUDGET_LABEL} {format_cny(budget)}" if budget is not None and meets(budget) else None
        )
    for metric in campaign.metrics:
        fact = metric_fact(metric)
        if fact.key != key and not (key == KEY_METRIC and fact.is_key):
            continue
        # The catalog's name, as the condition's chip says it (成交额 is GMV there too).
        entry = catalog.by_key(fact.key) if fact.key else None
        name = entry.label if entry else fact.name
        name = f"{KEY_METRIC_LABEL} {name}" if key == KEY_METRIC else name
        if field in ("attain", "lift"):
            value = fact.attainment_pct if field == "attain" else fact.lift_pct
            if value is not None and meets(value):
                return f"{name} {METRIC_FIELDS[field]} {format_pct(value, signed=field == 'lift')}"
            continue
        raw = fact.actual if field == "actual" else fact.target
        if raw is None or fact.base_scale is None:
            continue  # as the index: no number in a unit without a base
        if meets(raw * fact.base_scale):
            return f"{name} {METRIC_FIELDS[field]} {format_number(raw, metric.unit)}"
    return None


def parse(text: str) -> MetricCondition:
    """Read a condition in the URL form or as a person writes it; raise ConditionError."""
    cleaned = text.strip()
    if match := _CODE.match(cleaned):
        key, which, op, number = match.groups()
        if key not in (KEY_METRIC, BUDGET) and catalog.by_key(key) is None:
            raise ConditionError(f"指标目录里没有“{key}”：请从列表中选择指标", "mf_metric")
        return build(key, which, op, number)
    if dotted := _DOTTED.match(cleaned):
        # "roi.targt>=2": the URL form with a misspelt field, not a metric named "roi.targt"
        # (which the catalog's loose match read as ROI's actual value).
        raise ConditionError(
            f"看不懂“{_short(dotted[1])}”：点号后应为 actual（实际值）、target（目标值）、"
            "attain（达成率）或 lift（较基线），如 roi.actual>=2",
            "mf_field",
        )
    natural = _NATURAL.match(cleaned)
    if natural is None:
        raise ConditionError(f"看不懂“{_short(cleaned)}”：请写成比较式，{EXAMPLE}")
    left = natural["left"].strip()
    field: Field = "actual"
    for word, meaning in _FIELD_WORDS:
        if left.lower().endswith(word):
            left, field = left[: -len(word)].strip(), meaning
            break
    key = metric_key(left)
    op = _MEANING[re.sub(r"\s+", " ", natural["op"])]
    return build(key, field, op, natural["value"])


def metric_key(name: str) -> str:
    """Return the catalog key (or "key") a metric name means; raise ConditionError if none."""
    if not name:
        raise ConditionError(f"请写出指标名，{EXAMPLE}", "mf_metric")
    if name.lower() in _KEY_NAMES:
        return KEY_METRIC
    if name.lower() in _BUDGET_NAMES:
        return BUDGET
    if catalog.by_key(name) is not None:
        return name
    found = catalog.match(name)
    if found is None:
        raise ConditionError(
            f"指标目录里没有“{_short(name)}”：请从列表中选择指标，或换一个常用叫法", "mf_metric"
        )
    return found.metric.key


def build(key: str, field: str, op: str, number: str) -> MetricCondition:
    """Make a condition from its parts (the search form's four boxes); raise ConditionError."""
    if key not in (KEY_METRIC, BUDGET) and catalog.by_key(key) is None:
        raise ConditionError("请从列表中选择指标", "mf_metric")
    if field not in METRIC_FIELDS:
        raise ConditionError("请选择比较实际值、目标值、达成率还是较基线", "mf_field")
    if op not in COMPARISONS:
        raise ConditionError("请选择比较方式（≥、≤、＞、＜ 或 =）", "mf_op")
    if key == KEY_METRIC and field != "attain":
        raise ConditionError("主要指标只能按达成率筛选（各活动的主要指标单位不同）", "mf_field")
    if key == BUDGET and field != "actual":
        raise ConditionError("预算只能按金额筛选（选“实际值”）", "mf_field")
    if not number.strip():
        raise ConditionError("请填写数值，如 2、50万 或 80%")
    value = parse_to_base(number)
    if not isinstance(value, float) or not math.isfinite(value):
        raise ConditionError(
            f"“{_short(number)}”不是数字：请填写如 2、50万、1.2亿元 或 80%（金额按元、人数按人比较）"
        )
    return MetricCondition(key=key, field=field, op=op, value=value)  # type: ignore[arg-type]


def catalog_choices() -> list[tuple[str, str]]:
    """Return (key, Chinese name) of every metric a condition may name, 主要指标 first."""
    return [
        (KEY_METRIC, KEY_METRIC_LABEL),
        (BUDGET, BUDGET_LABEL),
        *((m.key, m.label) for m in catalog.CATALOG),
    ]


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# ---- conditions typed in the search box ------------------------------------------------------
# "GMV 超过 50万", "ROI ≥ 2 的直播", "达成率低于80%的大促", "预算 100万 以上", "50万以上的GMV":
# a subject (a catalog metric name or alias, 主要指标, 预算, or 达成率 alone, which means each
# campaign's key metric), a comparison word from COMPARISON_WORDS and a number with an optional
# unit (kb/parsing.py's units), in one of four orders. Every part is required: "ROI 提升 2 倍"
# names no comparison and stays words. The text is folded first (width, case, Traditional), so
# "預算 100萬 以上" and "ＧＭＶ ＞ ５０万" read like their simplified half-width forms.

_ATTAIN_ALONE = ("达成率", "完成率", "目标达成率")
# After a number: a date, a period or a rank is no amount ("超过 2024 年", "低于 3 天").
_NOT_AMOUNT = r"(?!\s*[年月日号天周期届])"
_NUMBER = (
    r"(?<![a-z0-9.])(?P<{n}>[-+]?(?:1\s*[:：]\s*\d+(?:\.\d+)?|(?:\d{{1,3}}(?:,\d{{3}})+|\d+)"
    r"(?:\.\d+)?))(?:\s*(?P<{u}>{units}))?(?![a-z0-9.])" + _NOT_AMOUNT
)


@dataclass(frozen=True, slots=True)
class TypedCondition:
    """A condition read from the search box, with the words it was read from (as typed)."""

    condition: MetricCondition | MetricOrder
    text: str


@dataclass(frozen=True, slots=True)
class UnreadCondition:
    """A fragment written as a condition whose unit does not fit its metric ("GMV 超过 50万单").

    It is searched as words; ``reason`` says in Chinese why it filters nothing and how to write it.
    """

    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReadQuery:
    """A search box's text: the conditions it states and the words left to search."""

    conditions: tuple[TypedCondition, ...]
    words: str
    # Written as conditions but with a unit the metric is not measured in: left as words.
    unread: tuple[UnreadCondition, ...] = ()


@cache
def _names() -> dict[str, str]:
    """Return every folded name a subject may have → its key ("gmv", "key", "budget")."""
    names = {fold(alias): entry.key for entry in catalog.CATALOG for alias in entry.aliases}
    names.update({fold(entry.label): entry.key for entry in catalog.CATALOG})
    names.update({name: KEY_METRIC for name in _KEY_NAMES if name != "key"})
    names.update(dict.fromkeys(_BUDGET_NAMES, BUDGET))
    return {re.sub(r"\s+", " ", name).strip(): key for name, key in names.items() if name}


@cache
def _grammar() -> re.Pattern[str]:
    # Built on first use: folding the catalog's names loads OpenCC, and importing does no I/O.
    fields = _alternation(fold(word) for word, _ in _FIELD_WORDS)
    subject = (
        rf"(?:(?P<{{s}}name>{_alternation(_names())})(?:\s*的)?(?:\s*(?P<{{s}}field>{fields}))?"
        rf"|(?P<{{s}}alone>{_alternation(_ATTAIN_ALONE)}))"
    )
    before = _alternation(w for w, _, place in COMPARISON_WORDS if place == "before")
    after = _alternation(w for w, _, place in COMPARISON_WORDS if place == "after")
    units = _alternation(parsing.unit_words(), suffix=True)
    most = _alternation(fold(word) for word, _ in SUPERLATIVE_WORDS)

    def number(tag: str) -> str:
        return _NUMBER.format(n=f"{tag}num", u=f"{tag}unit", units=units)

    orders = (
        # GMV 超过 50万 · ROI ≥ 2 · GMV 达成率低于80% · GMV 达到 1000万以上 (a word after the
        # number too: read with the condition, not left as a word to search)
        rf"{subject.format(s='a')}\s*(?P<aop>{before})\s*{number('a')}(?:\s*(?P<atail>{after}))?",
        # 预算 100万 以上 · 预算在100万以上
        rf"{subject.format(s='b')}\s*(?:在\s*)?{number('b')}\s*(?P<bop>{after})",
        # 50万以上的GMV
        rf"{number('c')}\s*(?P<cop>{after})\s*(?:的\s*)?{subject.format(s='c')}",
        # 超过50万的GMV · 达到50万以上的GMV
        rf"(?P<dop>{before})\s*{number('d')}(?:\s*(?P<dtail>{after}))?\s*(?:的\s*)?"
        rf"{subject.format(s='d')}",
        # ROI 最高 · 获客成本最低的 · 复购率提升最多 (not "GMV 最高达 1亿": a number follows)
        rf"{subject.format(s='e')}\s*(?:的\s*)?(?P<eop>{most})(?!\s*(?:达到|可达|达|到|为)?\s*[-+]?\d)",
        # 最高的 ROI · lowest CAC · best K-factor
        rf"(?P<fop>{most})\s*(?:的\s*)?{subject.format(s='f')}",
    )
    return re.compile("|".join(f"(?:{order})" for order in orders))


def read_query(text: str, *, as_text: Iterable[str] = ()) -> ReadQuery:
    """Find the conditions a search box's text states; return them and the words left.

    ``as_text``: fragments (as typed) to keep as words, as the page's × on a recognised
    condition asks. A fragment that names a condition the filters cannot read (a unit that
    does not fit the metric, "GMV 超过 50%", "GMV 超过 50万单") stays words too: no error, the text
    is searched, and ``unread`` says why in Chinese (a planner who typed a condition would
    otherwise take the text matches for filtered ones).
    """
    kept = {fragment.strip() for fragment in as_text}
    folded, offsets = normalize(text)
    found: list[TypedCondition] = []
    unread: list[UnreadCondition] = []
    spans: list[tuple[int, int]] = []
    for match in _grammar().finditer(folded):
        start, end = match.span()
        if offsets is not None:  # a character that expanded when folded ("⑩"): map back
            start, end = offsets[start], offsets[end - 1] + 1
        typed = text[start:end].strip()
        if typed in kept:
            continue
        misfit = _unit_misfit(match, typed)
        if misfit is not None:
            unread.append(UnreadCondition(typed, misfit))
            continue
        condition = _condition(match)
        if condition is None:
            continue
        found.append(TypedCondition(condition, typed))
        spans.append((start, end))
    if not found:
        return ReadQuery((), text.strip(), tuple(unread))
    pieces, position = [], 0
    for start, end in spans:
        pieces.append(text[position:start])
        position = end
    pieces.append(text[position:])
    words = " ".join(piece for p in pieces if (piece := _JOINERS.sub("", p).strip()))
    return ReadQuery(tuple(found), "" if fold(words) in _WHAT_IS_SEARCHED else words, tuple(unread))


# Words that only name what every search lists ("券核销率超过 40% 的活动"): searched alone,
# they would rank every campaign by how much it reads like "活动" and the floor could fold the
# ones the condition found; left alone, the query lists by the condition instead.
_WHAT_IS_SEARCHED = frozenset(
    {
        "活动",
        "的活动",
        "活动复盘",
        "复盘",
        "案例",
        "campaign",
        "campaigns",
        "哪些活动",
        "有哪些活动",
    }
)


# What joins a condition to the words around it ("ROI ≥ 2 的直播", "GMV 超过 50万，且 ROI ≥ 2"):
# dropped with the condition, at the ends of the words left.
_JOINERS = re.compile(
    r"^(?:[\s,，、;；。.]|的|且|并且|而且|及|和|与|or|and|with)+(?![a-z0-9])"
    r"|(?<![a-z0-9])(?:[\s,，、;；。]|的|且|并且|而且|及|和|与|and|with|where|whose)+$"
)


def _subject(match: re.Match[str]) -> tuple[str, Field, str, dict[str, str]]:
    """Return the key, field and unit a grammar match names, and its groups by their bare name."""
    groups = {k: v for k, v in match.groupdict().items() if v is not None}
    tag = next(k[0] for k in groups if k.endswith("op"))
    bare = {k[1:]: v for k, v in groups.items() if k[0] == tag}
    name, field_word = bare.get("name"), bare.get("field")
    field: Field
    if name is not None:
        key = _names()[re.sub(r"\s+", " ", name)]
        field = _FIELD_MEANING[field_word] if field_word else "actual"
    else:
        key, field = KEY_METRIC, "attain"
    return key, field, bare.get("unit", ""), bare


def _condition(match: re.Match[str]) -> MetricCondition | MetricOrder | None:
    key, field, unit, groups = _subject(match)
    if not _unit_fits(key, field, unit):
        return None
    way = _SUPERLATIVE.get(re.sub(r"\s+", " ", groups["op"]))
    if way is not None:
        return _order(key, field, way)
    op = _MEANING[re.sub(r"\s+", " ", groups["op"])]
    tail = groups.get("tail")
    if tail is not None and op == "=":
        # "为 100万以上": the word after the number says which way. Otherwise the word before
        # it decides ("达到 1000万以上" is ≥ either way; "超过 50万以上" stays ＞).
        op = _MEANING[re.sub(r"\s+", " ", tail)]
    try:
        return build(key, field, op, groups["num"] + unit)
    except ConditionError:
        return None  # 主要指标 实际值, 预算 达成率…: left as words


def _order(key: str, field: Field, way: Superlative) -> MetricOrder | None:
    """Return the order a superlative asks for; None for one the index cannot order by."""
    if key == KEY_METRIC and field != "attain":
        return None  # 主要指标 最高: key metrics differ in unit, only their attainment compares
    if key == BUDGET and field != "actual":
        return None
    if way in ("best", "worst"):
        # A cost or a rate of refunds is best when lowest; attainment and lift always higher.
        entry = catalog.by_key(key) if field in ("actual", "target") else None
        lower_is_better = entry is not None and entry.direction == "lower"
        way = "lower" if (way == "best") == lower_is_better else "higher"
    return MetricOrder(key=key, field=field, descending=way == "higher")


_POINTS = re.compile(r"^\s*(?:个?百分点|pp)\s*$", re.IGNORECASE)


# What a catalog metric's actual and target values are measured in, for the units a typed
# condition may carry. The catalog's kinds say what a metric means, not its unit: 订单量 and ROI
# are "value" like GMV, but 订单量 counts orders (单) and ROI is a ratio (倍), not money.
Measure = Literal["money", "count", "percent", "ratio", "plain"]
_MEASURE_OF_KIND: dict[str, Measure] = {
    "value": "money",
    "cost": "money",
    "count": "count",
    "traffic": "count",
    "rate": "percent",
    "risk": "percent",
    "satisfaction": "plain",
}
_MEASURE_OF_KEY: dict[str, Measure] = {
    "orders": "count",
    "paying_users": "count",
    "units_sold": "count",
    "roi": "ratio",
    "cost_ratio": "percent",
    "positive_rating": "percent",
    # Per-order, per-person and time figures: a few, never 万 of them.
    "items_per_order": "plain",
    "purchase_frequency": "plain",
    "usage_frequency": "plain",
    "watch_time": "plain",
}
_MEASURE_WORDS: dict[Measure, str] = {
    "money": "金额（如 50万、1.2亿元、8000元）",
    "count": "数量（如 3万、5000人、2万单）",
    "percent": "百分比（如 3%、80%）",
    "ratio": "倍数（如 2、1:3.5、2倍）",
    "plain": "不带万、亿的数（如 2、3.5）",
}
_DIMENSION_WORDS = {"money": "金额", "count": "数量", "percent": "百分比", "ratio": "倍数"}


def measure(key: str) -> Measure:
    """Return what a catalog metric's actual and target are measured in (budget: money)."""
    if key == BUDGET:
        return "money"
    entry = catalog.by_key(key)
    if entry is None:
        return "plain"
    return _MEASURE_OF_KEY.get(key, _MEASURE_OF_KIND[entry.kind])


def _unit_fits(key: str, field: str, unit: str) -> bool:
    """Say whether a typed unit can measure this key's field: no % on a GMV, no 元 on a rate."""
    if not unit:
        return True
    reading = parsing.read_unit(unit)
    dimension = reading.dimension
    if field in ("attain", "lift"):
        # Percentage points are a difference ("提升 10 个百分点": 31 % → 41 %), not the relative
        # lift or attainment the index holds: ambiguous, left as words.
        return dimension == "percent" and reading.scale == 1.0 and not _POINTS.match(unit)
    if key == KEY_METRIC:
        return False
    if dimension == "unknown":  # a bare 万, 亿 or k: a scale of the metric's own unit
        return reading.scale == 1.0 or measure(key) in ("money", "count")
    return {
        "money": dimension == "money",
        "count": dimension == "count",
        # Percentage points of a rate ("转化率 超过 3 个百分点") are a level here, as % is.
        "percent": dimension == "percent" or (dimension == "ratio" and reading.scale == 1.0),
        # A ROI of 300 % is stored as 3 倍 or 300: ambiguous, and money or people are no ratio.
        "ratio": dimension == "ratio",
        "plain": dimension == "count" and reading.scale == 1.0,
    }[measure(key)]


def _unit_misfit(match: re.Match[str], typed: str) -> str | None:
    """Return why a condition's unit does not fit its metric, in Chinese; None if it fits.

    Only for a metric's own value (actual, target) in a unit of another dimension or an
    impossible scale ("GMV 超过 50万单", "ROI 超过 50万", "转化率 高于 3万"); a field that the
    subject cannot have (主要指标 实际值) or a percentage-point lift is no unit mistake and
    stays words silently, as before.
    """
    key, field, unit, _ = _subject(match)
    if field not in ("actual", "target") or key == KEY_METRIC or _unit_fits(key, field, unit):
        return None
    entry = catalog.by_key(key)
    name = BUDGET_LABEL if key == BUDGET else (entry.label if entry else key)
    reading = parsing.read_unit(unit)
    if reading.dimension in _DIMENSION_WORDS:
        # "万单" is a count in 单: name the unit without its scale.
        word = re.sub(rf"^(?:{'|'.join(map(re.escape, parsing.UNIT_SCALES))})(?=.)", "", unit)
        problem = f"“{word.strip()}”是{_DIMENSION_WORDS[reading.dimension]}单位"
    else:
        problem = "不带万、亿"
    return (
        f"“{_short(typed)}”没有当作条件，已按文字搜索：{name} 按{_MEASURE_WORDS[measure(key)]}比较，"
        f"{problem}。"
    )
