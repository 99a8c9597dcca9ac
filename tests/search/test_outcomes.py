"""Outcome queries: parsing metric + condition, and judging a campaign's metrics against them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kb.campaigns import metrics as metric_catalog
from search.documents import MetricFact
from search.normalize import normalize
from search.outcomes import (
    FULL_STRENGTH_PCT,
    LIFT_THRESHOLD_PCT,
    MIN_STRENGTH,
    Condition,
    OutcomeIntent,
    find_metrics,
    match_outcome,
    parse_outcome,
)

ALIASES = tuple(a for m in metric_catalog.CATALOG for a in (*m.aliases, m.label))
RETENTION = ("retention_d1", "retention_d7", "retention_d30")
Parse = Callable[[str], OutcomeIntent | None]


def lookup(name: str) -> tuple[str, str] | None:
    """Map a name to (catalog key, direction) as the app does."""
    metric = metric_catalog.lookup(name)
    return (metric.key, metric.direction) if metric else None


def fact(
    name: str, baseline: float | None, target: float | None, actual: float | None
) -> MetricFact:
    """Return a metric assessed the way the app assesses it (direction-adjusted)."""
    entry = metric_catalog.lookup(name)
    direction = entry.direction if entry else "higher"
    outcome = metric_catalog.assess(direction, baseline, target, actual)
    return MetricFact(
        name=name,
        key=entry.key if entry else None,
        direction=entry.direction if entry else None,
        baseline=baseline,
        target=target,
        actual=actual,
        attainment_pct=outcome.attainment_pct,
        lift_pct=outcome.lift_pct,
        hit=outcome.hit,
    )


@pytest.fixture(params=["aliases", "substrings"])
def parse(request: pytest.FixtureRequest) -> Parse:
    """Return parse_outcome scanning by the alias regex or by trying every substring."""
    aliases = ALIASES if request.param == "aliases" else None
    return lambda query: parse_outcome(query, lookup, aliases)


def parsed(parse: Parse, query: str) -> OutcomeIntent:
    intent = parse(query)
    assert intent is not None, query
    return intent


@pytest.mark.parametrize(
    ("query", "keys", "condition", "residual"),
    [
        ("ROI 低于预期的直播活动", ("roi",), "missed_target", "ROI 直播活动"),
        ("留存提升明显的会员活动", RETENTION, "improved", "留存 会员活动"),
        ("获客成本上涨的拉新活动", ("cac",), "worsened", "获客成本 拉新活动"),
        ("获客成本下降", ("cac",), "improved", "获客成本"),
        ("退货率变差的大促", ("return_rate",), "worsened", "退货率 大促"),
        ("退货率上升的雙十一活動", ("return_rate",), "worsened", "退货率 雙十一活動"),
        ("没有达成目标的召回活动", (), "missed_target", "召回活动"),
        ("未达标的社群拼团", (), "missed_target", "社群拼团"),
        ("GMV 超额完成", ("gmv",), "hit_target", "GMV"),
        ("成交额完成目标的大促", ("gmv",), "hit_target", "成交额 大促"),
        ("转化率下降", ("conversion_rate",), "worsened", "转化率"),
        ("退货率下降明显的大促", ("return_rate",), "improved", "退货率 大促"),
        ("CAC improved", ("cac",), "improved", "CAC"),
        ("转化率比基线下降的活动", ("conversion_rate",), "worsened", "转化率"),
        ("复购率提升的活动", ("repurchase_rate",), "improved", "复购率"),
        ("轉化率不及預期", ("conversion_rate",), "missed_target", "轉化率"),
        ("ＮＰＳ 显著提高", ("nps",), "improved", "ＮＰＳ"),
        ("效果下滑的短信召回", (), "worsened", "效果 短信召回"),
        ("campaigns that missed their ROI target", ("roi",), "missed_target", "ROI"),
        ("CAC went up", ("cac",), "worsened", "CAC"),
        ("CAC dropped after the livestream", ("cac",), "improved", "CAC after livestream"),
        ("conversion rate declined", ("conversion_rate",), "worsened", "conversion rate"),
        ("campaigns that hit their GMV target", ("gmv",), "hit_target", "GMV"),
        ("sales exceeded the target", ("gmv",), "hit_target", "sales"),
        ("campaigns that fell short", (), "missed_target", ""),
        ("user retention got worse than baseline", RETENTION, "worsened", "user retention"),
        ("new sign-ups went up", ("new_users",), "improved", "new sign-ups"),
    ],
)
def test_parse_outcome(
    parse: Parse, query: str, keys: tuple[str, ...], condition: str, residual: str
) -> None:
    intent = parsed(parse, query)
    assert (intent.metric_keys, intent.condition, intent.residual_query) == (
        keys,
        condition,
        residual,
    )


@pytest.mark.parametrize(
    "query",
    [
        "拼团 宝妈",
        "复购率",  # a metric alone is a keyword query
        "用户增长活动",  # a rising word with no metric is a campaign kind, not an outcome
        "提升品牌认知的跨界联名",
        "follow-up campaign for sign-ups",  # "up" inside a word, no condition
        "节日活动 上涨",  # 日活 inside 节日活动 is not DAU
        "",
    ],
)
def test_not_an_outcome_query(parse: Parse, query: str) -> None:
    assert parse(query) is None


def test_compound_query_keeps_its_first_clause(parse: Parse) -> None:
    intent = parsed(parse, "GMV 达标但 ROI 没达标的活动")
    assert intent == OutcomeIntent(("gmv",), "hit_target", "GMV ROI", ("gmv",))


def test_rising_and_falling_follow_each_metrics_direction(parse: Parse) -> None:
    up = parsed(parse, "GMV 和退货率都上涨")
    assert (up.metric_keys, up.condition) == (("return_rate",), "worsened")  # the nearer one


def test_all_targets_and_metric_words(parse: Parse) -> None:
    every = parsed(parse, "超额完成全部目标的拉新活动")
    assert (every.metric_keys, every.condition, every.all_targets) == ((), "hit_target", True)
    assert every.residual_query == "拉新活动"
    retention = parsed(parse, "留存率提升")
    assert retention.metric_words == ("留存",)


def test_find_metrics_prefers_the_longest_alias_and_whole_words() -> None:
    text = normalize("优惠券核销率和次日留存率, npv 与 pv, 五月活动")[0]
    found = [(text[m.start : m.end], m.keys) for m in find_metrics(text, lookup, ALIASES)]
    assert found == [
        ("优惠券核销率", ("redemption_rate",)),
        ("次日留存率", ("retention_d1",)),
        ("pv", ("views",)),
    ]
    assert find_metrics(text, lookup) == find_metrics(text, lookup, ALIASES)


def test_residual_keeps_the_users_characters() -> None:
    intent = parse_outcome("⑩月 ＧＭＶ 下降", lookup, ALIASES)
    assert intent is not None
    assert (intent.metric_keys, intent.residual_query) == (("gmv",), "⑩月 ＧＭＶ")


def intent(condition: Condition, *keys: str, words: tuple[str, ...] = ()) -> OutcomeIntent:
    return OutcomeIntent(keys, condition, "", words)


def at(pct: float) -> float:
    """Return the strength expected for an amount of ``pct`` percent."""
    return MIN_STRENGTH + (1 - MIN_STRENGTH) * min(pct / FULL_STRENGTH_PCT, 1.0)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (100 + LIFT_THRESHOLD_PCT, 0.0),  # at the threshold: not yet
        (100 + LIFT_THRESHOLD_PCT + 0.5, at(LIFT_THRESHOLD_PCT + 0.5)),
        (130, at(30)),
        (250, 1.0),
        (99, 0.0),
    ],
)
def test_improved_needs_a_lift_beyond_the_threshold(actual: float, expected: float) -> None:
    metrics = [fact("GMV", 100, None, actual)]
    assert match_outcome(intent("improved", "gmv"), metrics) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("actual", "worsened", "improved"),
    [
        (50 * (1 + LIFT_THRESHOLD_PCT / 100), 0.0, 0.0),  # CAC up by exactly the threshold
        (60, at(20), 0.0),  # CAC up 20 %: worse
        (40, 0.0, at(20)),  # CAC down 20 %: better
    ],
)
def test_lower_is_better_metrics_flip(actual: float, worsened: float, improved: float) -> None:
    metrics = [fact("获客成本", 50, None, actual)]
    assert match_outcome(intent("worsened", "cac"), metrics) == pytest.approx(worsened)
    assert match_outcome(intent("improved", "cac"), metrics) == pytest.approx(improved)


@pytest.mark.parametrize(
    ("name", "target", "actual", "missed", "hit"),
    [
        ("ROI", 3.0, 3.0, 0.0, MIN_STRENGTH),  # exactly on target is a hit
        ("ROI", 3.0, 2.97, at(1), 0.0),  # just under
        ("ROI", 3.0, 1.5, at(50), 0.0),
        ("ROI", 3.0, 0.3, 1.0, 0.0),  # a 90 % shortfall is capped at 1
        ("ROI", 3.0, 4.5, 0.0, at(50)),
        ("ROI", 3.0, None, 0.0, 0.0),  # no actual yet: neither
        ("获客成本", 50, 40, 0.0, at(25)),  # lower is better: 50/40 = 125 %
        ("获客成本", 50, 62.5, at(20), 0.0),  # 50/62.5 = 80 %
    ],
)
def test_targets(name: str, target: float, actual: float | None, missed: float, hit: float) -> None:
    metrics = [fact(name, None, target, actual)]
    key = lookup(name)[0]  # type: ignore[index]  # both names are in the catalog
    assert match_outcome(intent("missed_target", key), metrics) == pytest.approx(missed)
    assert match_outcome(intent("hit_target", key), metrics) == pytest.approx(hit)


def test_without_named_metrics_targets_use_the_key_metric() -> None:
    metrics = [
        fact("GMV", 100, None, 130),  # no target: not the key metric
        fact("新增用户数", None, 1000, 1200),  # key metric, hit
        fact("ROI", None, 3.0, 1.5),  # missed, but not the key metric
    ]
    assert match_outcome(intent("missed_target"), metrics) == 0.0
    assert match_outcome(intent("hit_target"), metrics) == pytest.approx(at(20))
    every = OutcomeIntent((), "hit_target", "", all_targets=True)
    assert match_outcome(every, metrics) == 0.0  # ROI missed
    assert match_outcome(every, metrics[:2]) == pytest.approx(at(20))
    assert match_outcome(intent("improved"), metrics) == pytest.approx(at(30))  # any metric
    assert match_outcome(intent("missed_target"), [fact("GMV", 1, None, 2)]) == 0.0


def test_named_metrics_match_by_key_or_by_a_word_of_an_uncatalogued_name() -> None:
    metrics = [fact("社群留存", 62, 70, 71.8), fact("GMV", 100, None, 150)]
    assert metrics[0].key is None
    retention = intent("improved", *RETENTION, words=("留存",))
    assert match_outcome(retention, metrics) == pytest.approx(at(100 * (71.8 / 62 - 1)))
    assert match_outcome(intent("improved", "roi"), metrics) == 0.0
    assert match_outcome(intent("improved", "gmv"), []) == 0.0
