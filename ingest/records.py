"""Turn what a reader found (cells, front matter, labelled lines) into input for the schema.

Everything an importer produces ends in ``validate_campaign``, the schema the form and the API
use. This module only brings raw values into the schema's shape (Chinese labels to codes, dates to
ISO, "35万" to 350000, list cells to lists); it never decides what is valid, so a value it cannot
read is passed on unchanged and the schema reports it in Chinese.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest import cells
from ingest.columns import Column, cell_text

TEXT_FIELDS = (
    "title", "industry", "department", "business_line", "goal", "summary", "went_well",
    "problems", "lessons", "recommendations", "external_id",
)  # fmt: skip
NESTED_FIELDS = tuple(cells.NESTED)
# Fields of the API's output shape that a client does not write: dropped when re-importing.
SERVER_FIELDS = ("id", "version", "created_at", "updated_at", "deleted_at")
METRIC_EXTRAS = ("catalog_key", "direction", "attainment_pct", "lift_pct", "hit", "is_key")


@dataclass(slots=True)
class SourceRow:
    """One record found in a file: where it is, its schema input, or why it could not be read.

    ``row`` is what a person looks for: the row number in a sheet (the header is a row too), the
    line in a JSON Lines file, the position of the item in a JSON array, 1 for a document.
    ``notes`` adds a place to messages for fields that came from elsewhere, e.g.
    ``{"metrics.2": "指标表第 7 行"}``. ``warnings`` names each value that was left empty
    because it could not be read, so the rest of the row is kept and nothing vanishes unseen.
    """

    row: int
    data: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    line: int | None = None
    # Values that could not be read and were left empty, one message each ("第 3 行 GMV 实际值 …").
    warnings: list[str] = field(default_factory=list)


def from_api_shape(item: Any) -> Any:
    """Drop the fields the API adds to a campaign (id, version, timestamps, metric assessments)."""
    if not isinstance(item, dict):
        return item
    data = {key: value for key, value in item.items() if key not in SERVER_FIELDS}
    metrics = data.get("metrics")
    if isinstance(metrics, list):
        data["metrics"] = [
            {k: v for k, v in m.items() if k not in METRIC_EXTRAS} if isinstance(m, dict) else m
            for m in metrics
        ]
    return data


def normalize_value(name: str, value: Any, warnings: list[str] | None = None) -> Any:
    """Bring one raw value of field ``name`` into the schema's shape (or leave it for the schema).

    With ``warnings``, a number that cannot be read (a budget, a metric's value) is left empty
    and named there instead of failing the whole row.
    """
    if name in TEXT_FIELDS:
        if isinstance(value, str):
            return cells.unneutralize(value.strip())
        return cells.parse_date(value) if hasattr(value, "isoformat") else cell_text(value)
    if name == "goal_type":
        return cells.goal_type(value)
    if name == "status":
        return cells.status(value)
    if name in ("start_date", "end_date"):
        return cells.parse_date(value)
    if name == "budget_cny":
        return cells.read_number(value, BUDGET_LABEL, warnings, scaled=True)
    if name in NESTED_FIELDS:
        if isinstance(value, str) and name == "metrics":
            value = cells.parse_metrics(cells.unneutralize(value.strip()), warnings)
        elif isinstance(value, str):
            value = cells.NESTED[name][1](cells.unneutralize(value.strip()))
        elif isinstance(value, dict):
            value = [value]
        elif isinstance(value, int | float):
            value = [cell_text(value)]
        if isinstance(value, list):
            return cells.normalize_nested(name, value, warnings)
    return value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def normalize_record(raw: Mapping[str, Any], warnings: list[str] | None = None) -> dict[str, Any]:
    """Normalize every non-blank value; a blank one (or one left empty) is left out, as the form does."""
    normalized = {
        name: normalize_value(name, value, warnings)
        for name, value in raw.items()
        if not _blank(value)
    }
    return {name: value for name, value in normalized.items() if value is not None}


def record_from_cells(
    columns: list[Column], values: list[Any], warnings: list[str] | None = None
) -> dict[str, Any]:
    """Build the schema input of one sheet row, with metrics from ``<metric>_<part>`` columns.

    With ``warnings``, each number that cannot be read is left empty and named there.
    """
    raw: dict[str, Any] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for column in columns:
        value = values[column.index] if column.index < len(values) else None
        if column.field is not None:
            if column.field == "budget_cny" and column.scale != 1.0 and not _blank(value):
                number = cells.read_number(value, column.header or BUDGET_LABEL, warnings)
                value = number * column.scale if isinstance(number, float) else number
            if not _blank(value) and _blank(raw.get(column.field)):
                raw[column.field] = value  # a repeated column fills in only what is missing
        elif column.metric is not None and column.part is not None:
            metric = metrics.setdefault(
                column.metric,
                {"name": column.metric, "unit": column.unit, **dict.fromkeys(_VALUE_PARTS)},
            )
            if column.part == "unit":
                if not _blank(value):
                    metric["unit"] = cell_text(value)
            else:
                label = f"{column.metric} {cells.VALUE_LABELS[column.part]}"
                metric[column.part] = cells.read_number(value, label, warnings)
                if isinstance(value, str) and value.strip().endswith("%") and not metric["unit"]:
                    metric["unit"] = "%"
    data = normalize_record(raw, warnings)
    extra = [m for m in metrics.values() if any(m[p] is not None for p in _VALUE_PARTS)]
    if extra:
        data["metrics"] = [*data.get("metrics", []), *extra]
    return data


_VALUE_PARTS = ("baseline", "target", "actual")
BUDGET_LABEL = "预算"


@dataclass(slots=True)
class MetricRows:
    """Metrics from a separate sheet or file, keyed by campaign (row, external_id or title)."""

    by_row: dict[int, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    by_external_id: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    by_title: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)
    label: str = "指标表"

    def add(self, sheet_row: int, values: Mapping[str, Any]) -> list[str]:
        """Add one metric row; return warnings: no campaign or metric named, a value unreadable."""
        name = cell_text(values.get("name"))
        if not name:
            return [f"{self.label}第 {sheet_row} 行：缺少指标名称，已跳过"]
        name = cells.unneutralize(name)
        unreadable: list[str] = []
        metric: dict[str, Any] = {
            "name": name,
            "unit": cell_text(values.get("unit")),
            **{
                part: cells.read_number(
                    values.get(part), f"{name} {cells.VALUE_LABELS[part]}", unreadable
                )
                for part in _VALUE_PARTS
            },
        }
        if not _blank(values.get("key")):
            metric["key"] = cells.parse_bool(values.get("key"))
        warnings = [f"{self.label}第 {sheet_row} 行 {message}" for message in unreadable]
        entry = (sheet_row, metric)
        row = cells.parse_number(values.get("campaign_row"))
        external_id = cells.unneutralize(cell_text(values.get("external_id")))
        title = cells.unneutralize(cell_text(values.get("title")))
        if isinstance(row, float) and row.is_integer():
            self.by_row.setdefault(int(row), []).append(entry)
        elif external_id:
            self.by_external_id.setdefault(external_id, []).append(entry)
        elif title:
            self.by_title.setdefault(title, []).append(entry)
        else:
            return [
                f"{self.label}第 {sheet_row} 行：没有活动编号或活动名称，无法对应到活动，已跳过"
            ]
        return warnings

    def attach(self, source: SourceRow) -> None:
        """Append the metrics that belong to this campaign row, noting where each came from."""
        if source.data is None:
            return
        external_id = source.data.get("external_id")
        title = source.data.get("title")
        found = sorted(
            [
                *self.by_row.get(source.row, []),
                *(self.by_external_id.get(external_id, []) if isinstance(external_id, str) else []),
                *(self.by_title.get(title, []) if isinstance(title, str) else []),
            ],
            key=lambda entry: entry[0],
        )
        if not found:
            return
        metrics = list(source.data.get("metrics") or [])
        for sheet_row, metric in found:
            source.notes[f"metrics.{len(metrics)}"] = f"{self.label}第 {sheet_row} 行"
            metrics.append(dict(metric))
            self.used.add(sheet_row)
        source.data["metrics"] = metrics

    def unused(self) -> Iterable[int]:
        """Return the metric rows that matched no campaign."""
        for group in (self.by_row, self.by_external_id, self.by_title):
            for entries in group.values():
                for sheet_row, _ in entries:
                    if sheet_row not in self.used:
                        yield sheet_row
