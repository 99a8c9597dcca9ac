"""The signal registry: one registered rule reaches settings, filter, labels, portfolio and API."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.config import all_settings
from kb.insights import signals
from kb.insights.signals import Setting, Signal, SignalThresholds
from kb.insights.signals.readings import Reading
from tests.factories import campaign_payload

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _missing_actuals(readings: Sequence[Reading], limits: SignalThresholds) -> list[Signal]:
    missing = [r.name for r in readings if r.target is not None and r.actual is None]
    if len(missing) <= limits["missing_actual_max"]:
        return []
    return [
        Signal(
            code="missing_actual",
            severity="medium",
            explanation="设了目标却没有实际值：" + "、".join(missing),
            rule="设了目标的指标缺少实际值",
            metrics=tuple(missing),
        )
    ]


@pytest.fixture
def extra_rule() -> Iterator[None]:
    """Register a rule of the test's own for the length of one test."""
    signals.register(
        signals.Rule(
            code="missing_actual",
            label="缺少实际值",
            explanation="设了目标的指标没有填实际值",
            check=_missing_actuals,
            settings={
                "missing_actual_max": Setting(0.0, "缺少实际值：最多容忍这么多个指标缺实际值")
            },
        )
    )
    yield
    signals.unregister("missing_actual")


def test_every_built_in_rule_is_complete_and_documented() -> None:
    assert signals.signal_codes() == (
        "data_bubble",
        "low_attainment",
        "cost_rise",
        "risk_worse",
        "low_redemption",
    )
    for code, rule in signals.RULES.items():
        assert rule.code == code
        assert rule.label
        assert rule.explanation
        for short, setting in rule.settings.items():
            name = signals.setting_name(short)
            assert f"| `KB_{name}` | `{setting.default:g}` | {setting.description} |" in README


def test_a_code_or_setting_cannot_be_registered_twice() -> None:
    taken = signals.RULES["cost_rise"]
    with pytest.raises(ValueError, match="already registered"):
        signals.register(taken)
    clash = signals.Rule(
        code="other_cost",
        label="另一个成本规则",
        explanation="与获客成本上升共用阈值",
        check=taken.check,
        settings={"cost_rise_pct": Setting(10.0, "重复")},
    )
    with pytest.raises(ValueError, match="cost_rise_pct"):
        signals.register(clash)
    assert "other_cost" not in signals.RULES


def test_a_registered_rule_reaches_every_place_that_lists_signals(
    extra_rule: None, insights_app: Flask, insights_client: FlaskClient
) -> None:
    # Settings: a default in the app's config (the app was made after the rule was registered).
    assert all_settings()["SIGNAL_MISSING_ACTUAL_MAX"] == (
        0.0,
        "缺少实际值：最多容忍这么多个指标缺实际值",
    )
    assert insights_app.config["SIGNAL_MISSING_ACTUAL_MAX"] == 0.0
    # The factory's 老客惊喜度 has a target and no actual.
    with insights_app.app_context():
        campaign = validate_campaign(campaign_payload(external_id="reg-1"))
        campaign_id = services.create_campaign(campaign).id

    body = insights_client.get(f"/api/v1/campaigns/{campaign_id}/signals").get_json()
    fired = {s["code"]: s for s in body["signals"]}
    assert fired["missing_actual"]["label"] == "缺少实际值"
    assert fired["missing_actual"]["metrics"] == ["老客惊喜度"]
    assert body["thresholds"]["SIGNAL_MISSING_ACTUAL_MAX"] == 0.0

    # The search filter accepts the code and finds the campaign; the search page offers it.
    found = insights_client.get(
        "/api/v1/search", query_string={"mode": "keyword", "signal": "missing_actual"}
    )
    assert found.status_code == 200
    assert [r["id"] for r in found.get_json()["results"]] == [campaign_id]
    page = insights_client.get("/search", query_string={"q": "召回"}).get_data(as_text=True)
    assert '<option value="missing_actual"' in page
    assert "缺少实际值" in page

    # The portfolio counts it and its page explains it.
    period = {"date_from": "2024-01-01", "date_to": "2024-12-31"}
    portfolio = insights_client.get("/api/v1/portfolio", query_string=period).get_json()
    assert portfolio["signal_counts"]["missing_actual"] == 1
    html = insights_client.get("/portfolio", query_string=period).get_data(as_text=True)
    assert "缺少实际值（设了目标的指标没有填实际值）" in html

    # Its threshold is a setting like any other.
    insights_app.config["SIGNAL_MISSING_ACTUAL_MAX"] = "1"
    body = insights_client.get(f"/api/v1/campaigns/{campaign_id}/signals").get_json()
    assert "missing_actual" not in {s["code"] for s in body["signals"]}


def test_the_search_filter_refuses_codes_no_rule_has(insights_client: FlaskClient) -> None:
    response = insights_client.get(
        "/api/v1/search", query_string={"mode": "keyword", "signal": "missing_actual"}
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert "signal" in str(error)
    assert "取值须为以下之一" in str(error)
    assert "数据泡沫" in str(error)  # the registered rules, by their Chinese names
