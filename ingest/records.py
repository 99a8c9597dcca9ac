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
    ``{"metrics.2": "指标表第 7 行"}``.
    """

    row: int
    data: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    line: int | None = None


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


def normalize_value(name: str, value: Any) -> Any:
    """Bring one raw value of field ``name`` into the schema's shape (or leave it for the schema)."""
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
        return cells.parse_number(value, scaled=True)
    if name in NESTED_FIELDS:
        if isinstance(value, str):
            value = cells.NESTED[name][1](cells.unneutralize(value.strip()))
        elif isinstance(value, dict):
            value = [value]
        elif isinstance(value, int | float):
            value = [cell_text(value)]
        if isinstance(value, list):
            return cells.normalize_nested(name, value)
    return value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def normalize_record(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Normalize every non-blank value; a blank one is left out, as the form does."""
    return {name: normalize_value(name, value) for name, value in raw.items() if not _blank(value)}


def record_from_cells(columns: list[Column], values: list[Any]) -> dict[str, Any]:
    """Build the schema input of one sheet row, with metrics from ``<metric>_<part>`` columns."""
    raw: dict[str, Any] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for column in columns:
        value = values[column.index] if column.index < len(values) else None
        if column.field is not None:
            if column.field == "budget_cny" and column.scale != 1.0:
                number = cells.parse_number(value)
                value = number * column.scale if isinstance(number, float) else value
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
                metric[column.part] = cells.parse_number(value)
                if isinstance(value, str) and value.strip().endswith("%") and not metric["unit"]:
                    metric["unit"] = "%"
    data = normalize_record(raw)
    extra = [m for m in metrics.values() if any(m[p] is not None for p in _VALUE_PARTS)]
    if extra:
        data["metrics"] = [*data.get("metrics", []), *extra]
    return data


_VALUE_PARTS = ("baseline", "target", "actual")


@dataclass(slots=True)
class MetricRows:
    """Metrics from a separate sheet or file, keyed by campaign (row, external_id or title)."""

    by_row: dict[int, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    by_external_id: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    by_title: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)
    label: str = "指标表"

    def add(self, sheet_row: int, values: Mapping[str, Any]) -> str | None:
        """Add one metric row; return a warning when it names no campaign or no metric."""
        name = cell_text(values.get("name"))
        if not name:
            return f"{self.label}第 {sheet_row} 行：缺少指标名称，已跳过"
        metric = {
            "name": cells.unneutralize(name),
            "unit": cell_text(values.get("unit")),
            **{part: cells.parse_number(values.get(part)) for part in _VALUE_PARTS},
        }
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
            return f"{self.label}第 {sheet_row} 行：没有活动编号或活动名称，无法对应到活动，已跳过"
        return None

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
