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


@pytest.mark.parametrize(
    ("name", "unit", "key", "confidence"),
    [
        ("ROI", "", "roi", 1.0),
        ("會員貢獻佔比", "%", "member_share", 1.0),  # Traditional folded to Simplified
        ("ＧＭＶ", "万元", "gmv", 1.0),  # full width folded to half width
        ("New sign-ups", "人", "new_users", 1.0),
        ("首单", "人", "first_orders", 1.0),
        ("留存", "%", "retention", 1.0),
        ("Activation rate (first post within 7 days)", "%", "activation_rate", 0.9),
        ("ROI（倍）", "", "roi", 0.9),
        ("私教課轉換率", "%", "conversion_rate", 0.7),
        ("午餐订单量", "万单", "orders", 0.74),
        ("礼盒销量", "套", "units_sold", 0.7),
        ("银发月活下单人数", "人", "paying_users", 0.7),
        ("Video views in app", "人次", "views", 0.77),
    ],
)  # fmt: skip
def test_names_match_by_normalized_name_with_a_confidence(
    name: str, unit: str, key: str, confidence: float
) -> None:
    found = metric_catalog.match(name, unit)
    assert found is not None
    assert (found.metric.key, found.confidence) == (key, confidence)


def test_a_unit_that_contradicts_the_metric_refuses_a_partial_match() -> None:
    assert metric_catalog.match("活动转化率", "%") is not None
    assert metric_catalog.match("活动转化率", "人") is None  # a 率 counted in people
    assert metric_catalog.match("老客惊喜度", "分") is None


def test_every_metric_name_in_the_demo_data_and_importer_samples_is_known() -> None:
    from kb.demo import demo_records

    names = {(m["name"], m.get("unit", "")) for r in demo_records() for m in r["metrics"]}
    names |= {("召回率", "%"), ("成团率", "%"), ("损耗率", "%"), ("次日达履约率", "%"),
              ("K值", ""), ("完课率", "%"), ("获客成本", "元")}  # fmt: skip
    unknown = sorted(n for n, u in names if metric_catalog.match(n, u) is None)
    assert unknown == []


@pytest.mark.parametrize(
    ("unit", "dimension", "scale"),
    [
        ("万元", "money", 1e4), ("亿元", "money", 1e8), ("元", "money", 1.0),
        ("萬 RMB", "money", 1e4), ("亿", "unknown", 1e8), ("万人", "count", 1e4),
        ("%", "percent", 1.0), ("倍", "ratio", 1.0), (":1", "ratio", 1.0), ("", "unknown", 1.0),
        ("分", "other", 1.0),
    ],
)  # fmt: skip
def test_units_fold_to_a_dimension_and_a_scale(unit: str, dimension: str, scale: float) -> None:
    assert metric_catalog.unit_dimension(unit) == (dimension, scale)


def test_ratio_units_are_compatible_and_an_empty_unit_is_a_ratio_for_roi() -> None:
    roi = metric_catalog.by_key("roi")
    assert roi is not None
    blank = metric_catalog.blank_unit(roi)
    for unit in ("倍", ":1", "%", ""):
        assert metric_catalog.units_compatible(unit, "", blank=blank)
    assert not metric_catalog.units_compatible("元", "", blank=blank)
    assert metric_catalog.units_compatible("万元", "美元")  # each against its own target
    assert not metric_catalog.units_compatible("%", "人")


@pytest.mark.parametrize(
    ("name", "unit", "key"),
    [
        ("营业额", "万元", "revenue"), ("入群人数", "人", "private_adds"),
        ("企微加粉数", "人", "private_adds"), ("参与人数", "人", "participants"),
        ("涨粉", "人", "followers"), ("续报率", "%", "renewal_rate"), ("加购率", "%", "add_to_cart_rate"),
        ("Churn rate", "%", "churn_rate"), ("满意度", "分", "positive_rating"),
        ("直播间观看人数", "人", "views"), ("注册人数", "人", "new_users"),
        ("直播间NPS", "分", "nps"), ("小程序K-factor", "", "k_factor"),
    ],
)  # fmt: skip
def test_the_catalog_knows_names_teams_commonly_write(name: str, unit: str, key: str) -> None:
    found = metric_catalog.match(name, unit)
    assert found is not None
    assert found.metric.key == key


def test_names_outside_the_catalog_are_classified_by_unit_and_wording() -> None:
    rate = metric_catalog.resolve("私域渗透率", "%")
    assert rate is not None
    assert (rate.metric.key, rate.metric.kind, rate.metric.direction) == (
        "~私域渗透率",
        "rate",
        "higher",
    )
    assert rate.confidence == metric_catalog.INFERRED_CONFIDENCE
    assert rate.basis == "按单位与名称归为比率类"
    # The same name written another way is the same metric (width, script, a note).
    again = metric_catalog.resolve("私域滲透率（全渠道）", "％")
    assert again is not None
    assert again.metric.key == rate.metric.key
    complaints = metric_catalog.resolve("售后投诉量", "件")
    assert complaints is not None
    assert (complaints.metric.kind, complaints.metric.direction) == ("risk", "lower")
    spend = metric_catalog.resolve("物料成本", "万元")
    assert spend is not None
    assert (spend.metric.kind, spend.metric.direction) == ("cost", "lower")
    assert metric_catalog.resolve("老客惊喜度", "分") is None  # a score says nothing
    assert metric_catalog.match("私域渗透率", "%") is None  # match() itself never guesses
    catalogued = metric_catalog.resolve("GMV", "万元")
    assert catalogued is not None
    assert catalogued.confidence == 1.0
