"""Operations: the health and readiness probes a proxy or an orchestrator calls (``views``)."""

from __future__ import annotations

from typing import Any

# Settings of this package, in the shape of kb.config.SETTINGS (documented in the README as KB_*).
SETTINGS: dict[str, tuple[Any, str]] = {
    "READY_MAX_INDEX_LAG_S": (
        600,
        "/readyz answers 503 while the oldest entry of the index change log is older than this (s).",
    ),
}
