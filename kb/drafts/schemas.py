"""The API's shape of a draft analysis: similar cases, collisions, forecast, summary band.

Where a frozen dataclass of the analysis already is the answer's shape (a collision, a metric's
forecast, the summary band), it is a field type here as it is: pydantic dumps and documents it,
so there is no third copy of its fields.
"""

from __future__ import annotations

from datetime import date

from kb.campaigns.serialize import MetricOut, Out
from kb.drafts.collisions import Collision
from kb.drafts.forecast import Forecast
from kb.drafts.summary import DraftSummary, PlaybookMatch
from kb.vocab import GoalType


class SimilarCaseOut(Out):
    """A completed campaign like the draft, why it matched, and what it achieved and taught."""

    id: int
    title: str
    score: float
    reasons: list[str]
    parts: dict[str, float]
    industry: str
    goal_type: GoalType
    start_date: date
    end_date: date
    outcome: dict[str, MetricOut]
    went_well: str
    problems: str
    lessons: str
    recommendations: str


class ComparisonCaseOut(Out):
    """What one similar case achieved on the draft's metric."""

    id: int
    title: str
    name: str
    unit: str
    target: float | None
    actual: float | None
    attainment_pct: float | None
    hit: bool | None


class ComparisonOut(Out):
    """A draft target set beside what the similar cases achieved on the same catalog metric."""

    name: str
    key: str
    unit: str
    target: float | None
    cases: list[ComparisonCaseOut]


class DraftAnalysisOut(Out):
    """Similar cases, collisions, a forecast and the summary band for a draft."""

    similar: list[SimilarCaseOut]
    conflicts: list[Collision]
    forecast: Forecast
    comparison: list[ComparisonOut]
    summary: DraftSummary
    playbooks: list[PlaybookMatch]
    business_line: str | None
    own_ids: list[int]
    hidden: int
    notes: list[str]
    took_ms: float
