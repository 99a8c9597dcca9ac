"""Numbers and dates as a Chinese ops team writes them: 1260 万, 1.35 亿元, 2025年1月6日, 变差 73.3%."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from kb.campaigns.serialize import campaign_to_input
from kb.demo import load_demo
from kb.extensions import db
from kb.models import Campaign
from kb.web.rendering import (
    format_amount,
    format_change,
    format_cny,
    format_date,
    format_number,
    format_pct,
    format_quantity,
)
from tests.conftest import make_app
from tests.factories import campaign_payload


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (12_600_000, None, "1260 万"),
        (135_000_000, "元", "1.35 亿元"),
        (3380.0, "万元", "3380 万元"),
        (13_500, "万元", "1.35 亿元"),
        (12.5, "万元", "12.5 万元"),
        (1.2, "亿元", "1.2 亿元"),
        (123_456, "元", "12.35 万元"),
        (1_234_560, "元", "123.5 万元"),
        (99_996_000, "元", "1 亿元"),  # 9999.6 万 rounds into 亿, not "10000 万"
        (-2_500_000, "元", "-250 万元"),
        (8000, "元", "8,000 元"),
        (86.5, "元", "86.5 元"),
        (1_260_000, "人", "126 万人"),
        (16.8, "%", "16.8%"),
        (3.0, "%", "3%"),
        (3.5, "倍", "3.5 倍"),
        (12.0, None, "12"),
        (0.125, "", "0.125"),
        (None, "元", "—"),
    ],
)
def test_amounts_are_written_in_wan_and_yi(
    value: float | None, unit: str | None, text: str
) -> None:
    assert format_quantity(value, unit) == text


def test_cny_number_and_amount_agree() -> None:
    assert format_cny(500_000.0) == "50 万元"
    assert format_number(500_000.0) == format_amount(500_000.0) == "50 万"
    assert format_number(4380.0, "万元") == "4380 万元"


@pytest.mark.parametrize(
    ("value", "signed", "text"),
    [(87.0, False, "87%"), (87.46, False, "87.5%"), (12.0, True, "+12%"), (-3.4, True, "−3.4%")],
)
def test_percentages_drop_a_trailing_zero(value: float, signed: bool, text: str) -> None:
    assert format_pct(value, signed=signed) == text


@pytest.mark.parametrize(
    ("lift", "direction", "text"),
    [
        (-73.3, "lower", "变差 73.3%"),  # 退货率 18% → 31.2%
        (20.0, "lower", "改善 20%"),  # CAC 50 → 40
        (12.5, "higher", "提升 12.5%"),
        (-4.0, None, "下降 4%"),
        (0.0, "lower", "持平"),
        (None, "higher", "—"),
    ],
)
def test_change_from_baseline_is_said_in_words(
    lift: float | None, direction: str | None, text: str
) -> None:
    assert format_change(lift, direction) == text


def test_dates_are_written_in_nian_yue_ri() -> None:
    assert format_date(date(2025, 1, 6)) == "2025年1月6日"


def test_history_diff_writes_amounts_and_dates_as_the_page_does(client: FlaskClient) -> None:
    created = client.post("/api/v1/campaigns", json=campaign_payload(budget_cny=500_000))
    campaign = created.get_json()
    edit = campaign_payload(
        budget_cny=520_000, start_date="2025-01-06", end_date="2025-01-20", version=1
    )
    assert client.put(f"/api/v1/campaigns/{campaign['id']}", json=edit).status_code == 200
    html = client.get(f"/campaigns/{campaign['id']}/history/2").get_data(as_text=True)
    text = visible_text(html)
    assert "50 万元" in text
    assert "52 万元" in text
    assert "2025年1月6日" in text
    assert "500000" not in text
    assert ".0 " not in text


# What a page shows a reader: text outside script, style, template and the authors' own prose.
class _Visible(HTMLParser):
    SKIPPED = frozenset({"script", "style", "template", "textarea", "select"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        hidden = self._skip or tag in self.SKIPPED or "markdown" in classes
        if hidden and tag not in {"br", "input", "img", "hr", "meta", "link", "col", "wbr"}:
            self._skip.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
POINT_ZERO = re.compile(r"(?<![\d.])\d+\.0(?![\d])")
# A number of 10,000 or more not followed by 万 or 亿: 12,600,000 or 13500.
LARGE = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d{5,})(?:\.\d+)?(?!\s*[万亿\d])")


def problems(text: str) -> list[str]:
    """Return every ISO date, "x.0" and unscaled amount ≥ 1 万 in a page's visible text."""
    found = [f"ISO {m.group()}" for m in ISO_DATE.finditer(text)]
    found += [f"x.0 {m.group()}" for m in POINT_ZERO.finditer(text)]
    found += [
        f"大数 {m.group()}" for m in LARGE.finditer(text) if float(m[1].replace(",", "")) >= 1e4
    ]
    return found


def test_the_detector_finds_what_it_looks_for() -> None:
    text = "预算 12,600,000 元 · 13500万元 · 3,380.0 万元 · 2025-01-06 · 1260 万元 · 1.35 亿元 · 2025年"
    assert problems(text) == ["ISO 2025-01-06", "x.0 380.0", "大数 12,600,000"]
    assert problems("1260 万元 1.35 亿元 16.8% 2025年1月6日 1.05 倍 8,000 元") == []


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True)
class Demo:
    app: Flask
    ids: list[int]
    authored: list[str]  # every text the demo's authors wrote: their numbers are theirs


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """An app on the demo campaigns (SQLite), their ids and their authors' texts."""
    app = make_app(Path(tmp_path_factory.mktemp("numbers")), None)
    with app.app_context():
        assert not load_demo().rejected
        campaigns = db.session.scalars(sa.select(Campaign).order_by(Campaign.id)).all()
        ids = [campaign.id for campaign in campaigns]
        texts = {
            re.sub(r"\s+", " ", text).strip()
            for campaign in campaigns
            for text in _strings(campaign_to_input(campaign))
        }
    return Demo(app, ids, sorted((t for t in texts if len(t) > 3), key=len, reverse=True))


def test_demo_pages_write_amounts_in_wan_and_dates_in_nian_yue_ri(demo: Demo) -> None:
    client, ids = demo.app.test_client(), demo.ids
    paths = ["/", "/campaigns", "/campaigns?page=2", "/campaigns?page=3", "/lessons"]
    paths += ["/portfolio", "/portfolio?date_from=2023-01-01&date_to=2027-12-31"]
    paths += [f"/campaigns/{campaign_id}" for campaign_id in ids]
    # Each campaign's similar cases, collisions and forecast, loaded after its page.
    paths += [f"/campaigns/{campaign_id}/similar?fragment=1" for campaign_id in ids]
    paths += [f"/campaigns/{campaign_id}/history" for campaign_id in ids[:5]]
    paths += ["/playbooks", "/trash"]
    found: dict[str, list[str]] = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        text = visible_text(response.get_data(as_text=True))
        for authored in demo.authored:  # what authors wrote, they wrote; what we format is ours
            text = text.replace(authored, " ")
        if bad := problems(text):
            found[path] = bad
    assert found == {}
    assert len(ids) >= 50
