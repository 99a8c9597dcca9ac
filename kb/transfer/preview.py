"""What an import preview shows per row: the values as they were read, and those left empty.

A preview job stores each row's outcome (kb/transfer/jobs.py); the values themselves are read
again here from the stored file, for the rows the page lists only, so a person can check that
"12" under 预算（万元） was read as 12 万元 and see which cells could not be read at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ingest.errors import FileReadError
from kb.models import ImportJob
from kb.transfer.jobs import job_reader
from kb.vocab import GOAL_TYPES, STATUSES

_PARTS = (("baseline", "基线"), ("target", "目标"), ("actual", "实际"))


@dataclass(frozen=True, slots=True)
class MetricValues:
    """One metric as read: its name, unit and (label, value) for baseline, target and actual."""

    name: str
    unit: str
    values: tuple[tuple[str, float | str | None], ...]


@dataclass(slots=True)
class RowValues:
    """The values one row was read as (in the schema's units: yuan, ISO dates), and warnings."""

    budget_cny: float | str | None = None
    start_date: date | str | None = None
    end_date: date | str | None = None
    goal_type: str = ""
    status: str = ""
    metrics: list[MetricValues] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_values(job: ImportJob, rows: set[int]) -> dict[int, RowValues]:
    """Read the file of ``job`` again up to the last of ``rows``; return those rows' values.

    A file that cannot be read again (it could when the preview ran) gives no values: the page
    then shows the outcomes alone.
    """
    if not rows or not job.source:
        return {}
    last = max(rows)
    found: dict[int, RowValues] = {}
    try:
        for source in job_reader(job).rows():
            if source.row in rows:
                found[source.row] = _row_values(source.data or {}, source.warnings)
            if source.row >= last:
                break
    except (FileReadError, ValueError):
        return found
    return found


def _row_values(data: dict[str, Any], warnings: list[str]) -> RowValues:
    goal_type, status = data.get("goal_type"), data.get("status")
    return RowValues(
        budget_cny=_number(data.get("budget_cny")),
        start_date=_date(data.get("start_date")),
        end_date=_date(data.get("end_date")),
        goal_type=GOAL_TYPES.get(goal_type, str(goal_type)) if goal_type else "",
        status=STATUSES.get(status, str(status)) if status else "",
        metrics=[_metric(m) for m in data.get("metrics") or [] if isinstance(m, dict)],
        warnings=list(warnings),
    )


def _metric(metric: dict[str, Any]) -> MetricValues:
    return MetricValues(
        name=str(metric.get("name") or ""),
        unit=str(metric.get("unit") or ""),
        values=tuple((label, _number(metric.get(part))) for part, label in _PARTS),
    )


def _number(value: Any) -> float | str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return str(value)


def _date(value: Any) -> date | str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return str(value)
