"""The form translation: flat names to nested input and back."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from kb.campaigns import forms
from kb.validation import split_list


def test_split_list_accepts_chinese_and_ascii_separators() -> None:
    assert split_list("新用户、宝妈，大学生; 白领；银发用户\n KOC ,") == [
        "新用户", "宝妈", "大学生", "白领", "银发用户", "KOC",
    ]  # fmt: skip


def test_parse_form_keeps_raw_state_and_builds_schema_input() -> None:
    form = MultiDict(
        [
            ("title", " 标题 "),
            ("budget_cny", ""),
            ("audience", "宝妈、新用户"),
            ("metrics-3-name", "GMV"),
            ("metrics-3-target", "1,200"),
            ("metrics-3-actual", ""),
            ("metrics-1-name", "ROI"),
            ("metrics-1-unit", "倍"),
            ("metrics-7-name", ""),  # the blank trailing row
            ("rewards-0-type", "满减券"),
            ("rewards-0-stackable", "on"),
            ("rewards-1-type", ""),
            ("hypotheses-0-result", "validated"),  # a select alone does not make a row
        ]
    )
    state, data = forms.parse_form(form)
    assert state["title"] == " 标题 "
    assert [row["name"] for row in state["metrics"]] == ["ROI", "GMV"]  # index order
    assert state["hypotheses"] == []
    assert "budget_cny" not in data  # blank is "not given"
    assert data["title"] == "标题"
    assert data["audience"] == ["宝妈", "新用户"]
    assert data["metrics"] == [
        {"name": "ROI", "unit": "倍"},
        {"name": "GMV", "unit": "", "target": "1,200"},  # read by the schema (kb/parsing.py)
    ]
    assert data["rewards"] == [{"type": "满减券", "detail": "", "stackable": True}]


def test_deleted_rows_are_dropped() -> None:
    form = MultiDict(
        [("metrics-0-name", "GMV"), ("metrics-0-delete", "1"), ("metrics-1-name", "UV")]
    )
    _, data = forms.parse_form(form)
    assert [m["name"] for m in data["metrics"]] == ["UV"]


def test_add_blank_row() -> None:
    state = forms.empty_state()
    forms.add_blank_row(state, "metrics")
    forms.add_blank_row(state, "not-a-section")
    assert state["metrics"] == [
        {"name": "", "unit": "", "baseline": "", "target": "", "actual": "", "key": ""}
    ]
