"""The vocabulary: every enumeration's labels name exactly its valid values."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from kb import vocab


@pytest.mark.parametrize(
    ("values", "labels"),
    [
        (vocab.GoalType, vocab.GOAL_TYPES),
        (vocab.Status, vocab.STATUSES),
        (vocab.DocumentKind, vocab.DOCUMENT_KINDS),
        (vocab.HypothesisResult, vocab.HYPOTHESIS_RESULTS),
        (vocab.SearchMode, vocab.SEARCH_MODES),
        (vocab.Severity, vocab.SEVERITIES),
    ],
)
def test_every_value_has_one_chinese_label(values: Any, labels: dict[str, str]) -> None:
    assert set(labels) == set(get_args(values))
    assert all(label.strip() for label in labels.values())


def test_active_statuses_are_statuses() -> None:
    assert {"planned", "running"} == vocab.ACTIVE_STATUSES
    assert set(vocab.STATUSES) >= vocab.ACTIVE_STATUSES
