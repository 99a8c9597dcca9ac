"""Translate the campaign form to and from the shape the validation schema takes.

The form posts flat names (``metrics-2-target``); this module turns them into the nested dict the
schema validates, and keeps the raw strings so a form with errors is shown again exactly as typed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from werkzeug.datastructures import MultiDict

from kb.campaigns import metrics as catalog
from kb.models import Campaign
from kb.parsing import format_input
from kb.validation import split_list
from kb.web import rendering

SCALARS = (
    "title", "industry", "department", "business_line", "goal_type", "goal", "start_date",
    "end_date", "status", "budget_cny", "summary", "went_well", "problems", "lessons",
    "recommendations", "external_id",
)  # fmt: skip
LISTS = ("audience", "products", "channels", "tags")
ROWS: dict[str, tuple[str, ...]] = {
    "rewards": ("type", "detail", "stackable"),
    "metrics": ("name", "unit", "baseline", "target", "actual", "key"),
    "hypotheses": ("statement", "result", "evidence"),
    "documents": ("title", "kind", "body"),
}
# Row fields that hold numbers: blank means "unknown", not an invalid number.
_NUMERIC = {"baseline", "target", "actual"}
_ROW_NAME = re.compile(r"^(\w+)-(\d+)-(\w+)$")


def parse_form(form: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (state, data): the raw values to show again, and the input for the schema."""
    state: dict[str, Any] = {name: form.get(name, "") for name in (*SCALARS, *LISTS)}
    state["version"] = form.get("version", "")
    for section, rows in _collect_rows(form).items():
        state[section] = rows

    data: dict[str, Any] = {}
    for name in SCALARS:
        value = state[name].strip()
        # A blank box is "not given": required fields then read "必填", optional ones default.
        if value:
            data[name] = value
    for name in LISTS:
        data[name] = split_list(state[name])
    for section in ROWS:
        data[section] = [_row_data(section, row) for row in state[section]]
    return state, data


def add_blank_row(state: dict[str, Any], section: str) -> None:
    """Append an empty row to a section (the no-JavaScript "add a row" button)."""
    if section in ROWS:
        state[section].append(dict.fromkeys(ROWS[section], ""))


def state_from_campaign(campaign: Campaign) -> dict[str, Any]:
    """Return the form state that shows a stored campaign."""
    state: dict[str, Any] = {}
    for name in SCALARS:
        value = getattr(campaign, name)
        if name == "budget_cny":
            # Exactly the stored value (50万, 1234567): a rounded display value saved back
            # would change the record.
            state[name] = format_input(value, amount=True)
        elif isinstance(value, date):
            # As every page writes dates (2023年10月24日); the form reads it back as typed.
            state[name] = rendering.format_date(value)
        else:
            state[name] = "" if value is None else str(value)
    for name in LISTS:
        state[name] = "、".join(getattr(campaign, name))
    state["version"] = str(campaign.version)
    state["rewards"] = [
        {"type": r.type, "detail": r.detail, "stackable": "on" if r.stackable else ""}
        for r in campaign.rewards
    ]
    state["metrics"] = [
        {
            "name": m.name,
            "unit": m.unit,
            **{key: format_input(getattr(m, key)) for key in ("baseline", "target", "actual")},
            "key": "on" if m.key else "",
        }
        for m in campaign.metrics
    ]
    state["hypotheses"] = [
        {"statement": h.statement, "result": h.result, "evidence": h.evidence}
        for h in campaign.hypotheses
    ]
    state["documents"] = [
        {"title": d.title, "kind": d.kind, "body": d.body} for d in campaign.documents
    ]
    return state


def empty_state() -> dict[str, Any]:
    """Return the state of a new, empty form."""
    state: dict[str, Any] = dict.fromkeys((*SCALARS, *LISTS), "")
    state.update(status="completed", version="")
    for section in ROWS:
        state[section] = []
    return state


def _collect_rows(form: MultiDict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Group ``section-i-field`` values into rows, in index order, dropping blank and deleted rows."""
    found: dict[str, dict[int, dict[str, str]]] = {section: {} for section in ROWS}
    for name, value in form.items(multi=True):
        match = _ROW_NAME.match(name)
        if not match or match[1] not in ROWS:
            continue
        section, index, field = match[1], int(match[2]), match[3]
        if field in ROWS[section] or field == "delete":
            found[section].setdefault(index, {})[field] = value
    rows: dict[str, list[dict[str, str]]] = {}
    for section, by_index in found.items():
        fields = ROWS[section]
        rows[section] = [
            {field: by_index[i].get(field, "") for field in fields}
            for i in sorted(by_index)
            if not by_index[i].get("delete") and _has_content(section, by_index[i])
        ]
    return rows


def _has_content(section: str, row: dict[str, str]) -> bool:
    # Select boxes and checkboxes always post a value; only typed text makes a row real.
    ignored = {"stackable", "key", "result", "kind", "delete"}
    return any(value.strip() for key, value in row.items() if key not in ignored)


def _row_data(section: str, row: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field, value in row.items():
        if field == "stackable":
            data[field] = value == "on"
        elif field == "key":
            # Only a ticked box is sent on: a draft's metric rows have no key field at all.
            if value == "on":
                data[field] = True
        elif field in _NUMERIC:
            # Read by the schema as typed (50万, 3.5%, 1,200: kb/parsing.py).
            if value.strip():
                data[field] = value.strip()
        else:
            data[field] = value
    return data


# ---- the metric catalog in the form ------------------------------------------------------------
# How many catalog metrics an unknown name is offered to be mapped to, and how alike (0–1, by
# difflib over the catalog's names and aliases) a name must be to be offered at all.
MAPPING_CHOICES = 3
MAPPING_MIN_SIMILARITY = 0.3


@dataclass(frozen=True, slots=True)
class Unclassified:
    """A metric row whose name is not in the catalog, and the catalog metrics it may mean."""

    row: int
    name: str
    choices: tuple[str, ...]


def metric_name_suggestions() -> list[str]:
    """Return the catalog's names for the metric-name box's suggestions (labels, then aliases)."""
    names = [entry.label for entry in catalog.CATALOG]
    names += [alias for entry in catalog.CATALOG for alias in entry.aliases if not alias.isascii()]
    return list(dict.fromkeys(names))


def unclassified_metrics(state: dict[str, Any]) -> dict[int, Unclassified]:
    """Return, by row, the metrics whose name the catalog does not know, with the nearest ones."""
    found: dict[int, Unclassified] = {}
    for row, metric in enumerate(state.get("metrics", [])):
        name = metric.get("name", "").strip()
        # Stored metrics are classified by exact name (a catalog alias): the same test here.
        if name and catalog.lookup(name) is None:
            found[row] = Unclassified(row, name, mapping_choices(name, metric.get("unit", "")))
    return found


def mapping_choices(name: str, unit: str) -> tuple[str, ...]:
    """Return the catalog metrics to offer for a name: the catalog's own partial match first."""
    partial = catalog.match(name, unit)
    first = (partial.metric.label,) if partial is not None else ()
    others = tuple(label for label in nearest_catalog_labels(name) if label not in first)
    return (*first, *others)[:MAPPING_CHOICES]


def nearest_catalog_labels(name: str) -> tuple[str, ...]:
    """Return the labels of the catalog metrics whose names look most like ``name``."""
    typed = name.strip().lower()
    best: dict[str, float] = {}
    for entry in catalog.CATALOG:
        for alias in (entry.label, *entry.aliases):
            candidate = alias.lower()
            similarity = difflib.SequenceMatcher(a=typed, b=candidate, autojunk=False).ratio()
            if candidate in typed or typed in candidate:
                similarity = max(
                    similarity, 0.6
                )  # 新客首单数 holds 首单: one is a part of the other
            best[entry.label] = max(best.get(entry.label, 0.0), similarity)
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return tuple(
        label for label, score in ranked[:MAPPING_CHOICES] if score >= MAPPING_MIN_SIMILARITY
    )


def map_metric(state: dict[str, Any], choice: str) -> bool:
    """Apply a "归为 …" click ("3:GMV"): name row 3 by the catalog label; False if it is no choice."""
    row_text, _, label = choice.partition(":")
    rows = state.get("metrics", [])
    if not row_text.isdigit() or int(row_text) >= len(rows):
        return False
    if label not in {entry.label for entry in catalog.CATALOG}:
        return False
    rows[int(row_text)]["name"] = label
    return True
