"""Stage 2, filters: metric ranges and facet filters as Whoosh queries."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from whoosh import query as wq

from search.keyword.fields import (
    METRIC_FIELD_NAMES,
    METRIC_KEY,
    MetricField,
    date_number,
    filter_value,
    metric_field,
)


@dataclass(frozen=True, slots=True)
class MetricRange:
    """A range of one metric value: ``low <= value < high``; a missing bound is open.

    ``key`` is a catalog key ("roi"), or "key" for the campaign's key metric (``is_key``, else
    the first with a target), which is indexed for attainment only. ``field``: "actual" or
    "target" (in the metric's base unit: 元 for money, one item for counts, % and 倍 as they
    are), "attain" (attainment %, 100 = target met) or "lift" (% over baseline). With both
    bounds None, it matches campaigns that have the value at all.
    """

    key: str
    field: MetricField
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        """Reject keys and bounds the index cannot hold."""
        if not METRIC_KEY.fullmatch(self.key):
            raise ValueError(f"invalid metric key {self.key!r}")
        if self.field not in METRIC_FIELD_NAMES:
            raise ValueError(f"invalid metric field {self.field!r}")
        if self.key == "key" and self.field != "attain":
            raise ValueError('the key metric is indexed for "attain" only')
        for bound in (self.low, self.high):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("metric bounds must be finite")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low must not exceed high")

    def to_query(self) -> wq.Query:
        """Return the Whoosh range query (low inclusive, high exclusive)."""
        name = metric_field(self.key, self.field)
        low = None if self.low is None else float(self.low)
        high = None if self.high is None else float(self.high)
        return wq.NumericRange(name, low, high, startexcl=False, endexcl=True)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What every result must satisfy; empty values mean "any"; list values must all match.

    Values are compared normalized (width, script and case folded): 寶媽 filters like 宝妈.
    ``date_from`` / ``date_to`` select campaigns that ran at any time in the range (inclusive).
    ``missed``: True for campaigns with a metric that missed its target, False for none.
    ``ids``: only these campaigns (an allow-list computed elsewhere, e.g. by warning signals);
    None means any, an empty set none.
    """

    industry: str | None = None
    goal_type: str | None = None
    status: str | None = None
    department: str | None = None
    business_line: str | None = None
    audience: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    reward_type: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    metrics: tuple[MetricRange, ...] = ()
    missed: bool | None = None
    ids: frozenset[int] | None = None

    @property
    def is_empty(self) -> bool:
        """Return whether nothing is filtered (every campaign passes)."""
        return (
            not self.terms()
            and self.date_from is None
            and self.date_to is None
            and not self.metrics
            and self.missed is None
            and self.ids is None
        )

    def terms(self) -> list[tuple[str, str]]:
        """Return the (field, normalized value) pairs every result must have, blanks skipped."""
        pairs: list[tuple[str, str]] = []
        for name in ("industry", "goal_type", "status", "department", "business_line"):
            value = getattr(self, name)
            if value and (normalized := filter_value(value)):
                pairs.append((name, normalized))
        for name in ("audience", "channel", "reward_type", "tag"):
            pairs.extend((name, n) for value in getattr(self, name) if (n := filter_value(value)))
        return pairs

    def to_query(self) -> wq.Query | None:
        """Return the equivalent Whoosh filter query, or None when nothing is filtered.

        The index filters with NumPy masks instead (``Snapshot.filter_mask``); this query
        states the same conditions in Whoosh's terms and the tests hold the two together.
        """
        clauses: list[wq.Query] = [wq.Term(name, value) for name, value in self.terms()]
        if self.date_from is not None:
            clauses.append(wq.NumericRange("end_date", date_number(self.date_from), None))
        if self.date_to is not None:
            clauses.append(wq.NumericRange("start_date", None, date_number(self.date_to)))
        clauses.extend(metric.to_query() for metric in self.metrics)
        if self.missed is not None:
            clauses.append(wq.Term("missed", self.missed))
        if self.ids is not None:
            # An empty Or matches nothing, as an empty allow-list should.
            clauses.append(wq.Or([wq.Term("id", str(i)) for i in sorted(self.ids)]))
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else wq.And(clauses)
