"""The metric catalog: aliases map to one key; attainment and lift respect direction."""

from __future__ import annotations

import pytest

from kb.campaigns import metrics as metric_catalog
from kb.campaigns.metrics import assess


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("GMV", "gmv"), ("成交额", "gmv"), ("交易总额", "gmv"), ("ＧＭＶ", "gmv"),
        ("转化率", "conversion_rate"), ("Conversion Rate", "conversion_rate"),
        ("轉換率", "conversion_rate"), ("30日留存", "retention_d30"),
        ("D30 retention", "retention_d30"), ("获客成本", "cac"), ("CAC", "cac"),
        ("退货率", "return_rate"), ("K值", "k_factor"), ("k值", "k_factor"),
    ],
)  # fmt: skip
def test_aliases_map_to_one_key(name: str, key: str) -> None:
    entry = metric_catalog.lookup(name)
    assert entry is not None
    assert entry.key == key


def test_unknown_names_are_not_guessed() -> None:
    assert metric_catalog.lookup("老客惊喜度") is None


def test_lower_is_better_metrics() -> None:
    for name in ("退货率", "CAC", "投诉率"):
        entry = metric_catalog.lookup(name)
        assert entry is not None
        assert entry.direction == "lower"


def test_aliases_are_unambiguous() -> None:
    seen: dict[str, str] = {}
    for entry in metric_catalog.CATALOG:
        for alias in entry.aliases:
            normalized = metric_catalog._normalize(alias)
            assert seen.setdefault(normalized, entry.key) == entry.key, alias


@pytest.mark.parametrize(
    ("direction", "baseline", "target", "actual", "attainment", "lift", "hit"),
    [
        ("higher", 100, 150, 160, 160 / 150 * 100, 60.0, True),
        ("higher", 100, 150, 120, 80.0, 20.0, False),
        ("higher", 100, 150, 150, 100.0, 50.0, True),  # exactly on target is a hit
        ("lower", 50, 40, 40, 100.0, 20.0, True),
        ("lower", 50, 40, 55, 40 / 55 * 100, -10.0, False),
        ("higher", None, 10, 12, 120.0, None, True),
        ("higher", 0, 10, 12, 120.0, None, True),  # no lift from a zero baseline
        ("higher", 5, None, 12, None, 140.0, None),
        ("lower", 5, 4, 0, None, 100.0, True),  # a zero cost has no finite attainment
        ("higher", 5, 0, 3, None, -40.0, True),
    ],
)  # fmt: skip
def test_assess(
    direction: metric_catalog.Direction,
    baseline: float | None,
    target: float | None,
    actual: float | None,
    attainment: float | None,
    lift: float | None,
    hit: bool | None,
) -> None:
    outcome = assess(direction, baseline, target, actual)
    assert outcome.attainment_pct == (pytest.approx(attainment) if attainment is not None else None)
    assert outcome.lift_pct == (pytest.approx(lift) if lift is not None else None)
    assert outcome.hit is hit
