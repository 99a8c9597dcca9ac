"""Signal texts name metrics in Chinese: a metric written in English that the catalog knows is
said by its Chinese name, with the name as written after it (issue 16: codes and English leak)."""

from __future__ import annotations

import re

from flask import Flask

from kb.campaigns import metrics as metric_catalog
from kb.insights.signals.engine import evaluate, signals_by_campaign
from kb.insights.signals.readings import display_name

CJK = re.compile(r"[\u3400-\u9fff]")


def test_a_name_without_chinese_is_said_in_chinese() -> None:
    assert display_name("conversion rate", metric_catalog.lookup("conversion rate")) == (
        "转化率（conversion rate）"
    )
    assert display_name("CAC", metric_catalog.lookup("CAC")) == "获客成本（CAC）"
    assert display_name("GMV", metric_catalog.lookup("GMV")) == "GMV"  # its Chinese name too
    assert display_name("获客成本", metric_catalog.lookup("获客成本")) == "获客成本"
    assert display_name("Activation rate (7d)", None) == "Activation rate (7d)"


def test_explanations_use_the_chinese_name() -> None:
    found = evaluate(
        [
            {
                "name": "conversion rate",
                "unit": "%",
                "baseline": 3,
                "target": 3.5,
                "actual": 2.4,
                "key": True,
            },
            {"name": "CAC", "unit": "元", "baseline": 118, "target": 110, "actual": 159.3},
        ],
        goal_type="conversion",
    )
    texts = {s.code: s.explanation for s in found}
    assert texts["low_attainment"].startswith("主要指标 转化率（conversion rate） 达成率 68.6%")
    assert texts["cost_rise"].startswith("获客成本（CAC）较基线上升 35%")


def test_every_demo_signal_names_catalogued_metrics_in_chinese(demo_app: Flask) -> None:
    with demo_app.app_context():
        found = [s for signals in signals_by_campaign().values() for s in signals]
    checked = 0
    for signal in found:
        for name in signal.metrics:
            entry = metric_catalog.lookup(name)
            if entry is not None and not CJK.search(name) and CJK.search(entry.label):
                assert f"{entry.label}（{name}）" in signal.explanation, signal.explanation
                checked += 1
    assert checked >= 3  # conversion rate, Reactivated customers, CAC in the demo data
