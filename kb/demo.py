"""The demo data set: realistic campaigns written for this product, loaded idempotently."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.validation import InvalidInputError


@dataclass(frozen=True, slots=True)
class LoadReport:
    """How many demo campaigns were created, updated, left unchanged or rejected (and why)."""

    counts: dict[str, int]
    rejected: dict[str, dict[str, str]]


def demo_records() -> list[dict[str, Any]]:
    """Return the bundled demo campaigns as raw records."""
    text = resources.files("kb").joinpath("demo_data/campaigns.json").read_text(encoding="utf-8")
    records: list[dict[str, Any]] = json.loads(text)
    return records


def load_demo() -> LoadReport:
    """Create or update every demo campaign, keyed by its external_id."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    rejected: dict[str, dict[str, str]] = {}
    for record in demo_records():
        try:
            _, outcome = services.upsert_campaign(validate_campaign(record))
        except InvalidInputError as exc:
            rejected[str(record.get("external_id"))] = exc.fields
            continue
        counts[outcome] += 1
    return LoadReport(counts=counts, rejected=rejected)
