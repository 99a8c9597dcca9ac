"""A campaign's metrics as the rules read them, and the wording every rule's explanation shares.

Rules read what a metric measures from the catalog (``kind``: traffic, value, cost, risk…), so a
metric the catalog does not know never fires a signal it could not judge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kb.campaigns import metrics as metric_catalog
from kb.campaigns.key_metric import choose
from kb.web.rendering import format_number
from search.normalize import normalize


@dataclass(frozen=True, slots=True)
class Reading:
    """One metric as the rules see it: what it measures and how it moved."""

    name: str
    key: str | None
    unit: str
    kind: metric_catalog.Kind | None
    direction: metric_catalog.Direction
    baseline: float | None
    target: float | None
    actual: float | None
    # Raw change from baseline in % (numbers going up is positive, whatever the direction).
    change_pct: float | None
    attainment_pct: float | None
    # The campaign's key metric (主要指标): the one its goal is judged by.
    is_key: bool = False
    # How the explanations name it: the catalog's Chinese name for a name written in another
    # language ("转化率（conversion rate）", "获客成本（CAC）"), else the name as written.
    label: str = ""

    @property
    def shown(self) -> str:
        """Return the name an explanation uses."""
        return self.label or self.name


@dataclass(frozen=True, slots=True)
class _Record:
    """A metric mapping as kb.campaigns.key_metric reads it."""

    name: str
    catalog_key: str | None
    target: float | None
    key: bool


def read_metrics(
    metrics: Iterable[Mapping[str, Any]], goal_type: str | None = None
) -> list[Reading]:
    """Return each metric mapping (``name``, ``unit``, ``baseline``, ``target``, ``actual``…) read.

    ``goal_type`` and each mapping's ``key`` (the author's choice) say which is the key metric.
    """
    metrics = list(metrics)
    records = [
        _Record(
            name=str(m.get("name") or ""),
            catalog_key=m.get("catalog_key"),
            target=_number(m.get("target")),
            key=bool(m.get("key")),
        )
        for m in metrics
    ]
    chosen = choose(goal_type, records)
    readings = []
    for position, metric in enumerate(metrics):
        name = str(metric.get("name") or "")
        key = metric.get("catalog_key")
        entry = metric_catalog.by_key(key) if key else metric_catalog.lookup(name)
        direction: metric_catalog.Direction = entry.direction if entry else "higher"
        baseline, target, actual = (
            _number(metric.get(k)) for k in ("baseline", "target", "actual")
        )
        outcome = metric_catalog.assess(direction, baseline, target, actual)
        change = None
        if baseline is not None and actual is not None and baseline != 0:
            change = (actual - baseline) / abs(baseline) * 100
        readings.append(
            Reading(
                name=name,
                label=display_name(name, entry),
                key=entry.key if entry else None,
                unit=str(metric.get("unit") or ""),
                kind=entry.kind if entry else None,
                direction=direction,
                baseline=baseline,
                target=target,
                actual=actual,
                change_pct=change,
                # As on the campaign page: a metric the catalog does not know counts as
                # higher-is-better for attainment (its own target says what was wanted).
                attainment_pct=outcome.attainment_pct,
                is_key=chosen is not None and chosen[0] == position,
            )
        )
    return readings


_CJK = re.compile(r"[\u3400-\u9fff]")


def display_name(name: str, entry: metric_catalog.CatalogMetric | None) -> str:
    """Name a metric for a Chinese reader: a name without Chinese that the catalog knows by a
    Chinese name is said in Chinese, the name as written after it ("转化率（conversion rate）")."""
    if entry is None or _CJK.search(name) or not _CJK.search(entry.label):
        return name
    return f"{entry.label}（{name}）"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def change(r: Reading) -> float:
    """Return the change over baseline in %, 0 when unknown."""
    return r.change_pct if r.change_pct is not None else 0.0


def fold(text: str) -> str:
    """Return text folded for matching names (case, width, Traditional, spaces)."""
    return re.sub(r"\s+", " ", normalize(text)[0]).strip()


def named(name: str) -> str:
    """Return a metric name ready to be followed by Chinese: "ROI " but "退货率"."""
    return f"{name} " if name[-1:].isascii() and name[-1:].isalnum() else name


def signed(value: float) -> str:
    """Write a change in % with its sign: +320%, -8%."""
    return f"{'+' if value > 0 else ''}{plain(value)}%"


def plain(value: float) -> str:
    """Write a percentage with at most one decimal: 320, 8.1, 79.5 (never "-0")."""
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def g(value: float) -> str:
    """Write a threshold as short as it goes: 10, 0.5."""
    return f"{value:g}"


def value_text(value: float | None, unit: str) -> str:
    """Write a metric value with its unit: 52 元, 18%, —."""
    if value is None:
        return "—"
    # One writer for every page: 1.26 亿元 for 12600 万元, 16.8%, never 12,600,000.
    return format_number(value, unit)
