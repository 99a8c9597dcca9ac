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


def test_labels_kept_by_features_agree_with_the_vocabulary() -> None:
    from kb.accounts.services import ROLE_LABELS
    from kb.insights.lessons import KIND_LABELS, THEME_LABELS

    assert THEME_LABELS == vocab.THEMES
    assert KIND_LABELS == vocab.LESSON_KINDS
    assert ROLE_LABELS == vocab.ROLES


def test_the_history_and_the_importer_name_fields_from_the_vocabulary() -> None:
    from ingest.columns import FIELD_COLUMNS
    from kb.campaigns.history import FIELD_LABELS as HISTORY_LABELS
    from kb.campaigns.schemas import CampaignIn

    assert set(vocab.CAMPAIGN_FIELDS) == set(CampaignIn.model_fields)
    assert {name: vocab.FIELD_LABELS[name] for name in vocab.CAMPAIGN_FIELDS} == HISTORY_LABELS
    for name in vocab.CAMPAIGN_FIELDS:  # a sheet may head a column with the field's own name
        assert vocab.FIELD_LABELS[name] in FIELD_COLUMNS[name], name


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("start_date", "开始日期"),
        ("metrics.2.target", "数据指标第 3 行 · 目标"),
        ("rewards.0.type", "奖励与优惠第 1 行 · 奖励类型"),
        ("audience.1", "目标人群第 2 项"),
        ("metric_range.0", "指标条件第 1 条"),
        ("date_to", "截止日期"),
        ("offset", "翻页位置"),
        ("", "提交的内容"),
        ("no_such_field", "提交的内容"),  # never the code itself
    ],
)
def test_field_label_names_every_path_in_chinese(path: str, label: str) -> None:
    assert vocab.field_label(path) == label


def test_every_schema_field_a_person_can_meet_has_a_chinese_name() -> None:
    from kb.campaigns.schemas import (
        CampaignIn,
        DocumentIn,
        DraftIn,
        HypothesisIn,
        ListQuery,
        MetricIn,
        RewardIn,
    )
    from kb.insights.schemas import LessonQuery, PlaybookIn, PortfolioQuery
    from kb.searching.schemas import SearchQuery

    for model in (
        CampaignIn,
        DraftIn,
        ListQuery,
        SearchQuery,
        PortfolioQuery,
        LessonQuery,
        PlaybookIn,
    ):
        missing = [name for name in model.model_fields if name not in vocab.FIELD_LABELS]
        assert missing == [], model.__name__
    rows = {
        "rewards": RewardIn,
        "metrics": MetricIn,
        "hypotheses": HypothesisIn,
        "documents": DocumentIn,
    }
    for section, row_model in rows.items():
        assert set(row_model.model_fields) <= set(vocab.ROW_FIELD_LABELS[section]), section


def test_value_label_names_enumeration_values() -> None:
    assert vocab.value_label("goal_type", "acquisition") == "拉新"
    assert vocab.value_label("kind", "deck") == "汇报材料"
    assert vocab.value_label("kind", "recommendation") == "建议"  # a lesson's kind
    assert vocab.value_label("role", "editor") == "编辑者"
    assert vocab.value_label("status", "unknown") == "unknown"
