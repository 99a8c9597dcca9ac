"""Stage 1, fields: the Whoosh schema of a campaign document and how a campaign fills it."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any, Literal

from whoosh import fields

from search import analysis
from search.documents import CampaignText
from search.normalize import normalize

METRIC_KEY = re.compile(r"[a-z0-9_]+")

# Text field -> field boost (scales the term weight before BM25's saturation).
TEXT_FIELDS: dict[str, float] = {
    "title": 3.0,
    "lessons": 2.0,
    "elements": 1.5,
    "goal": 1.5,
    "metrics": 1.0,
    "body": 1.0,
}
SINGLE_FACETS = ("industry", "goal_type", "status")
LIST_FACETS = ("audience", "channel", "reward_type")
FACET_FIELDS = SINGLE_FACETS + LIST_FACETS

# A metric's actual and target in its base unit (元, one item, %, 倍), attainment %, lift %.
MetricField = Literal["actual", "target", "attain", "lift"]
METRIC_FIELD_NAMES: tuple[MetricField, ...] = ("actual", "target", "attain", "lift")

# Numbers are indexed at full precision only. Whoosh's default (shift_step=4) adds a term per 4
# bits for its NumericRange queries (16 per 64-bit value, most unique to one document: 60 % of
# a build's terms); the index filters on arrays read from the full-precision terms instead
# (search.postings.numeric_values), and a NumericRange still works without the tiers.
_NUMBER: dict[str, Any] = {"shift_step": 0}


def make_schema() -> fields.Schema:
    """Return the schema: weighted text, filter fields and per-metric numbers."""
    analyzer = analysis.make_analyzer()
    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True),
        # The id again, as a column: document number -> id without reading stored fields.
        id_num=fields.NUMERIC(int, bits=64, sortable=True, **_NUMBER),
        version=fields.NUMERIC(int, bits=64, stored=True, sortable=True, **_NUMBER),
        # yyyymmdd; the column orders the listing of an empty query.
        start_date=fields.NUMERIC(int, stored=True, sortable=True, **_NUMBER),
        end_date=fields.NUMERIC(int, stored=True, **_NUMBER),
        key_attain=fields.NUMERIC(float, bits=64, **_NUMBER),
        missed=fields.BOOLEAN(),
    )
    for name, boost in TEXT_FIELDS.items():
        # No positions: queries are bags of terms, and overlapping tokens make phrases unreliable.
        schema.add(name, fields.TEXT(analyzer=analyzer, phrase=False, field_boost=boost))
    for name in ("industry", "goal_type", "status", "department", "business_line"):
        schema.add(name, fields.ID(stored=True))
    for name in (*LIST_FACETS, "tag"):
        schema.add(name, fields.KEYWORD(stored=True, commas=True, lowercase=True))
    schema.add("m_*", fields.NUMERIC(float, bits=64, **_NUMBER), glob=True)
    return schema


def filter_value(value: str) -> str:
    """Normalize a filter value as indexed: width, script and case folded, no commas."""
    # NFKC turns "，" into ",", which separates KEYWORD values.
    return normalize(value)[0].replace(",", " ").strip()


def date_number(day: date) -> int:
    """Return a date as the yyyymmdd integer the index stores."""
    return day.year * 10_000 + day.month * 100 + day.day


def metric_field(key: str, which: MetricField) -> str:
    """Return the index field of a metric's actual or target (base unit), attainment % or lift %."""
    return "key_attain" if key == "key" else f"m_{key}_{which}"


def to_fields(doc: CampaignText) -> dict[str, Any]:
    """Flatten a campaign into the index's fields."""
    values: dict[str, Any] = {
        "id": str(doc.id),
        "id_num": doc.id,
        "version": doc.version,
        "start_date": date_number(doc.start_date),
        "end_date": date_number(doc.end_date),
        "title": doc.title,
        "lessons": "\n".join(s for s in (doc.lessons, doc.recommendations, doc.hypotheses) if s),
        "elements": doc.elements_text(),
        "goal": doc.goal,
        "metrics": doc.metrics_text(),
        "body": doc.body_text(),
        "industry": filter_value(doc.industry),
        "goal_type": filter_value(doc.goal_type),
        "status": filter_value(doc.status),
        "department": filter_value(doc.department),
        "missed": any(m.hit is False for m in doc.metrics),
    }
    if doc.business_line:
        values["business_line"] = filter_value(doc.business_line)
    for name, items in (
        ("audience", doc.audience),
        ("channel", doc.channels),
        ("reward_type", doc.reward_types),
        ("tag", doc.tags),
    ):
        if normalized := [v for v in map(filter_value, items) if v]:
            values[name] = ",".join(normalized)
    seen: set[str] = set()
    for metric in doc.metrics:
        if metric.key is None or metric.key in seen or not METRIC_KEY.fullmatch(metric.key):
            continue  # the first of a campaign's metrics under one key is the one filtered on
        seen.add(metric.key)
        # Actual and target in the base unit, so 120 万元 and 1.2 亿元 compare with "≥ 50万".
        # A unit no base fits (美元, 次/万人) leaves them out of the numbers: a range on them
        # does not find the campaign, which still has its attainment and lift (unit-free)
        # and is found by the metric's name in the text.
        scale = metric.base_scale
        for which, number in (
            ("actual", _scaled(metric.actual, scale)),
            ("target", _scaled(metric.target, scale)),
            ("attain", metric.attainment_pct),
            ("lift", metric.lift_pct),
        ):
            if number is not None and math.isfinite(number):
                values[f"m_{metric.key}_{which}"] = float(number)
    # The app marks the key metric; a document without one falls back to the first with a target.
    key_metric = next((m for m in doc.metrics if m.is_key), None) or next(
        (m for m in doc.metrics if m.target is not None), None
    )
    if key_metric is not None and key_metric.attainment_pct is not None:
        values["key_attain"] = float(key_metric.attainment_pct)
    return values


def _scaled(value: float | None, scale: float | None) -> float | None:
    return None if value is None or scale is None else value * scale
