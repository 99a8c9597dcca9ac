"""Every error path of the forms and filters speaks Chinese: no field code, no English message.

The test walks the campaign form, the draft form, the search filters and the metric filter, the
list, portfolio and lesson filters, sign-in, the account page and the admin forms with bad input
of every kind, and reads what a person sees of the errors: the text of the error summary, the
messages beside fields, the flashes and alerts (attribute values and scripts are not seen).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb import vocab
from tests.factories import campaign_payload
from tests.signed_in import PASSWORD, SignedInClient, ensure_account

_ERROR_CLASSES = {"field-error", "errors", "error-summary", "flash-error"}


class _ErrorText(HTMLParser):
    """Collect the visible text inside error regions (by class or role=alert)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # > 0 inside an error region
        self.stack: list[bool] = []
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "input", "img", "meta", "link", "hr", "option"):
            return
        found = dict(attrs)
        classes = set((found.get("class") or "").split())
        opens = bool(classes & _ERROR_CLASSES) or found.get("role") == "alert"
        self.stack.append(opens)
        self.depth += opens
        if tag in ("script", "style", "template"):
            self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "input", "img", "meta", "link", "hr", "option") or not self.stack:
            return
        self.depth -= self.stack.pop()
        if tag in ("script", "style", "template"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if self.depth > 0 and not self.skip and data.strip():
            self.parts.append(data.strip())


def error_text(html: str) -> str:
    parser = _ErrorText()
    parser.feed(html)
    return " ".join(parser.parts)


# Field codes: every name the vocabulary knows, and any snake_case or dotted path (metrics.0).
_CODES = sorted({name for name in vocab.FIELD_LABELS if len(name) > 1} | set(vocab.GOAL_TYPES))
_CODE_PATTERN = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b|\b[a-z_]+\.\d+\b")
# English a person might still meet in a Chinese message: product and metric names.
_ALLOWED_LATIN = {"GMV", "ROI", "UV", "PV", "KOL", "KOC", "NPS", "DAU", "MAU", "CAC", "App", "NUL"}


def assert_chinese(shown: str, where: str) -> None:
    assert shown.strip(), f"{where}: no error shown at all"
    text = re.sub(r"“[^”]*”", "“”", shown)  # what the person typed, quoted back, is theirs
    assert re.search(r"[\u4e00-\u9fff]", text), f"{where}: no Chinese in {shown!r}"
    codes = list(_CODE_PATTERN.findall(text))
    codes += [c for c in _CODES if re.search(rf"(?<![A-Za-z_]){re.escape(c)}(?![A-Za-z_])", text)]
    assert not codes, f"{where}: field codes {codes} in {text!r}"
    words = [w for w in re.findall(r"[A-Za-z]{3,}", text) if w not in _ALLOWED_LATIN]
    assert not words, f"{where}: English {words} in {text!r}"


def form(**overrides: str) -> dict[str, str]:
    data = {
        "title": "618 宝妈拼团",
        "industry": "母婴",
        "department": "用户增长部",
        "goal_type": "referral",
        "status": "completed",
        "start_date": "2025-06-01",
        "end_date": "2025-06-18",
        "metrics-0-name": "K值",
        "metrics-0-target": "1.5",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


CAMPAIGN_FORM_ERRORS: list[dict[str, Any]] = [
    {
        "title": "",
        "industry": "",
        "department": "",
        "goal_type": "",
        "start_date": "",
        "end_date": "",
    },
    {"start_date": "12月1日"},
    {"start_date": "2025-02-30"},
    {"end_date": "下周一"},
    {"end_date": "2025-05-01"},
    {"budget_cny": "五十万"},
    {"budget_cny": "-5"},
    {"goal_type": "acquisitionx"},
    {"status": "done"},
    {"metrics-0-target": "abc", "metrics-0-actual": "nan"},
    {"metrics-0-key": "on", "metrics-1-name": "GMV", "metrics-1-key": "on"},
    {"hypotheses-0-statement": "A 好于 B", "hypotheses-0-result": "maybe"},
    {"documents-0-title": "方案", "documents-0-kind": "pdf"},
    {"rewards-0-type": "券" * 60},
    {"title": "长" * 201},
    {"audience": "、".join(["宝" * 101])},
]


@pytest.mark.parametrize("overrides", CAMPAIGN_FORM_ERRORS)
def test_campaign_form_errors(client: FlaskClient, overrides: dict[str, str]) -> None:
    response = client.post("/campaigns/new", data=form(**overrides))
    assert response.status_code == 422
    assert_chinese(error_text(response.get_data(as_text=True)), f"campaign form {overrides}")


def test_campaign_edit_errors(client: FlaskClient) -> None:
    created = client.post("/api/v1/campaigns", json=campaign_payload()).get_json()["id"]
    response = client.post(f"/campaigns/{created}/edit", data=form(version="1", start_date="12/1"))
    assert response.status_code == 422
    assert_chinese(error_text(response.get_data(as_text=True)), "edit form")


DRAFT_FORM_ERRORS: list[dict[str, str]] = [
    {"title": "", "goal": "", "summary": ""},
    {"title": "草案", "start_date": "12月1日"},
    {"title": "草案", "budget_cny": "很多"},
    {"title": "草案", "goal_type": "viral"},
    {"title": "草案", "metrics-0-name": "GMV", "metrics-0-target": "一亿"},
    {"title": "草案", "start_date": "2025-06-10", "end_date": "2025-06-01"},
]


@pytest.mark.parametrize("overrides", DRAFT_FORM_ERRORS)
def test_draft_form_errors(client: FlaskClient, overrides: dict[str, str]) -> None:
    response = client.post("/drafts/new", data=overrides)
    assert response.status_code == 422
    assert_chinese(error_text(response.get_data(as_text=True)), f"draft form {overrides}")


SEARCH_FILTER_ERRORS: list[dict[str, str]] = [
    {"mode": "fuzzy"},
    {"limit": "0"},
    {"offset": "x"},
    {"offset": "-1"},
    {"goal_type": "viral"},
    {"status": "done"},
    {"date_from": "12月1日"},
    {"date_to": "abc"},
    {"date_to": "2025-13-01"},
    {"metric_range": "abc"},
    {"metric_range": "xyz>2"},
    {"metric_range": "roi.actual>=很多"},
    {"metric_range": "key.actual>1"},
    {"signal": "unknown_signal"},
    {"missed": "maybe"},
    {"expand": "sometimes"},
    {"audience": "宝" * 101},
    # the metric form: metric → 实际值/达成率/较基线 → comparison → value
    {"mf_metric": "", "mf_field": "actual", "mf_op": ">=", "mf_value": "2"},
    {"mf_metric": "roi", "mf_field": "actual", "mf_op": ">=", "mf_value": ""},
    {"mf_metric": "roi", "mf_field": "actual", "mf_op": ">=", "mf_value": "很多"},
    {"mf_metric": "key", "mf_field": "actual", "mf_op": ">=", "mf_value": "2"},
    {"mf_metric": "roi", "mf_field": "speed", "mf_op": ">=", "mf_value": "2"},
    {"mf_metric": "roi", "mf_field": "actual", "mf_op": "~", "mf_value": "2"},
    {"mf_metric": "no_such_metric", "mf_field": "actual", "mf_op": ">=", "mf_value": "2"},
]


@pytest.mark.parametrize("params", SEARCH_FILTER_ERRORS)
def test_search_filter_errors(client: FlaskClient, params: dict[str, str]) -> None:
    response = client.get("/search", query_string={"q": "拼团", **params})
    assert response.status_code == 200
    assert_chinese(error_text(response.get_data(as_text=True)), f"search {params}")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/campaigns", {"date_from": "12月1日", "date_to": "x", "page": "0", "goal_type": "v"}),
        ("/campaigns", {"status": "done"}),
        ("/portfolio", {"date_from": "abc", "goal_type": "viral"}),
        ("/portfolio", {"date_from": "2025-06-01", "date_to": "2024-01-01"}),
        ("/portfolio", {"date_from": "2010-01-01", "date_to": "2025-12-31"}),
        ("/lessons", {"theme": "colour", "kind": "tip", "offset": "x", "limit": "0"}),
    ],
)
def test_list_portfolio_and_lesson_filter_errors(
    client: FlaskClient, path: str, params: dict[str, str]
) -> None:
    response = client.get(path, query_string=params)
    assert response.status_code in (200, 422)
    assert_chinese(error_text(response.get_data(as_text=True)), f"{path} {params}")


def test_sign_in_errors(app: Flask) -> None:
    anonymous = app.test_client()
    response = anonymous.post("/login", data={"username": "nobody", "password": "wrong"})
    assert_chinese(error_text(response.get_data(as_text=True)), "sign-in")
    response = anonymous.post("/login", data={"username": "", "password": ""})
    assert_chinese(error_text(response.get_data(as_text=True)), "blank sign-in")


def test_account_and_admin_form_errors(app: Flask) -> None:
    admin = SignedInClient(app, role="admin")
    responses = {
        "password": admin.post(
            "/account",
            data={
                "current_password": "wrong",
                "new_password": "short",
                "new_password_again": "other",
            },
        ),
        "new user": admin.post(
            "/admin/users", data={"username": "?", "role": "boss", "display_name": ""}
        ),
        "new user role": admin.post(
            "/admin/users", data={"username": "wang.fang", "role": "boss", "display_name": ""}
        ),
        "token": admin.post("/admin/tokens", data={"name": "", "role": "boss"}),
    }
    viewer = ensure_account(app, "viewer")
    change = admin.post(
        f"/admin/users/{viewer.user_id}",
        data={"action": "role", "role": "boss"},
        follow_redirects=True,
    )
    responses["role change"] = change
    for where, response in responses.items():
        assert_chinese(error_text(response.get_data(as_text=True)), where)
    assert PASSWORD  # the test accounts' password is not what was typed
