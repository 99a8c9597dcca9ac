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
from dataclasses import dataclass
from typing import Literal

from kb.campaigns import metrics as catalog
from kb.parsing import format_input, parse_to_base
from kb.vocab import COMPARISONS, METRIC_FIELDS
from search.keyword import MetricRange

Field = Literal["actual", "target", "attain", "lift"]
Comparison = Literal[">=", "<=", ">", "<", "="]
KEY_METRIC = "key"
KEY_METRIC_LABEL = "主要指标"

# The canonical form: a catalog key (or "key"), a field, a comparison, a number.
_CODE = re.compile(r"^([a-z0-9_]+)\.(actual|target|attain|lift)\s*(>=|<=|>|<|=)\s*(.+)$")
# Comparisons as people write them, longest first so that ≥ is not read as >.
_WORDS: tuple[tuple[str, Comparison], ...] = (
    (">=", ">="), ("≥", ">="), ("⩾", ">="), ("大于等于", ">="), ("不低于", ">="), ("不少于", ">="),
    ("至少", ">="), ("<=", "<="), ("≤", "<="), ("⩽", "<="), ("小于等于", "<="), ("不高于", "<="),
    ("不超过", "<="), ("至多", "<="), ("==", "="), ("=", "="), ("＝", "="), ("等于", "="),
    (">", ">"), ("＞", ">"), ("大于", ">"), ("高于", ">"), ("超过", ">"), ("<", "<"), ("＜", "<"),
    ("小于", "<"), ("低于", "<"),
)  # fmt: skip
_NATURAL = re.compile(
    r"^(?P<left>.+?)\s*(?P<op>"
    + "|".join(re.escape(word) for word, _ in _WORDS)
    + r")\s*(?P<value>.+)$"
)
_FIELD_WORDS: tuple[tuple[str, Field], ...] = (
    ("达成率", "attain"), ("完成率", "attain"), ("达成", "attain"), ("attain", "attain"),
    ("较基线", "lift"), ("比基线", "lift"), ("提升", "lift"), ("增幅", "lift"), ("lift", "lift"),
    ("实际值", "actual"), ("实际", "actual"), ("actual", "actual"),
    ("目标值", "target"), ("目标", "target"), ("target", "target"),
)  # fmt: skip
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
        if self.key == KEY_METRIC:
            name = KEY_METRIC_LABEL
        else:
            entry = catalog.by_key(self.key)
            name = entry.label if entry else self.key
        unit = "%" if self.field in ("attain", "lift") else ""
        shown = format_input(self.value, amount=not unit)
        return f"{name} {METRIC_FIELDS[self.field]} {COMPARISONS[self.op]} {shown}{unit}"

    def to_range(self) -> MetricRange:
        """Return the index's range (low inclusive, high exclusive) that this condition means."""
        value, above = self.value, math.nextafter(self.value, math.inf)
        low, high = {
            ">=": (value, None),
            ">": (above, None),
            "<": (None, value),
            "<=": (None, above),
            "=": (value, above),
        }[self.op]
        return MetricRange(key=self.key, field=self.field, low=low, high=high)


def parse(text: str) -> MetricCondition:
    """Read a condition in the URL form or as a person writes it; raise ConditionError."""
    cleaned = text.strip()
    if match := _CODE.match(cleaned):
        key, which, op, number = match.groups()
        if key != KEY_METRIC and catalog.by_key(key) is None:
            raise ConditionError(f"指标目录里没有“{key}”：请从列表中选择指标", "mf_metric")
        return build(key, which, op, number)
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
    op = next(meaning for word, meaning in _WORDS if word == natural["op"])
    return build(key, field, op, natural["value"])


def metric_key(name: str) -> str:
    """Return the catalog key (or "key") a metric name means; raise ConditionError if none."""
    if not name:
        raise ConditionError(f"请写出指标名，{EXAMPLE}", "mf_metric")
    if name.lower() in _KEY_NAMES:
        return KEY_METRIC
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
    if key != KEY_METRIC and catalog.by_key(key) is None:
        raise ConditionError("请从列表中选择指标", "mf_metric")
    if field not in METRIC_FIELDS:
        raise ConditionError("请选择比较实际值、目标值、达成率还是较基线", "mf_field")
    if op not in COMPARISONS:
        raise ConditionError("请选择比较方式（≥、≤、＞、＜ 或 =）", "mf_op")
    if key == KEY_METRIC and field != "attain":
        raise ConditionError("主要指标只能按达成率筛选（各活动的主要指标单位不同）", "mf_field")
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
    return [(KEY_METRIC, KEY_METRIC_LABEL), *((m.key, m.label) for m in catalog.CATALOG)]


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
