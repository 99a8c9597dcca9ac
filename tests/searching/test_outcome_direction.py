"""Above / below target by the metric's direction: a cost above its target missed it.

"获客成本超出目标" asks for campaigns whose CAC came in over its target, i.e. missed it; it was
read as hit_target (the campaigns that kept CAC under target: the opposite set).
"""

from __future__ import annotations

import pytest

from kb.campaigns import metrics as metric_catalog
from search.documents import MetricFact
from search.outcomes import match_outcome, parse_outcome

ALIASES = tuple(a for m in metric_catalog.CATALOG for a in (*m.aliases, m.label))


def lookup(name: str) -> tuple[str, str] | None:
    metric = metric_catalog.lookup(name)
    return (metric.key, metric.direction) if metric else None


@pytest.mark.parametrize("aliases", [ALIASES, None], ids=["aliases", "substrings"])
@pytest.mark.parametrize(
    ("query", "keys", "condition"),
    [
        # lower is better: above the target is a miss, below it a hit
        ("获客成本高于目标的拉新活动", ("cac",), "missed_target"),
        ("退货率超过目标的大促", ("return_rate",), "missed_target"),
        ("退货率低于目标的大促", ("return_rate",), "hit_target"),
        ("CAC above target", ("cac",), "missed_target"),
        ("CAC exceeded the target", ("cac",), "missed_target"),
        ("campaigns whose CAC came in below target", ("cac",), "hit_target"),
        # higher is better: as before
        ("GMV 超过目标的直播", ("gmv",), "hit_target"),
        ("ROI 低于预期的直播活动", ("roi",), "missed_target"),
        ("sales exceeded the target", ("gmv",), "hit_target"),
        # no metric named: above the target stays a hit
        ("超出预期的活动", (), "hit_target"),
        ("below expectations", (), "missed_target"),
    ],
)
def test_above_or_below_target_follows_the_metrics_direction(
    query: str, keys: tuple[str, ...], condition: str, aliases: tuple[str, ...] | None
) -> None:
    intent = parse_outcome(query, lookup, aliases)
    assert intent is not None
    assert (intent.metric_keys, intent.condition) == (keys, condition)


def cac(target: float, actual: float) -> MetricFact:
    entry = metric_catalog.lookup("获客成本")
    assert entry is not None
    assert entry.direction == "lower"
    outcome = metric_catalog.assess(entry.direction, None, target, actual)
    return MetricFact(
        name="获客成本",
        key=entry.key,
        direction=entry.direction,
        baseline=None,
        target=target,
        actual=actual,
        attainment_pct=outcome.attainment_pct,
        lift_pct=outcome.lift_pct,
        hit=outcome.hit,
    )


def test_a_cac_over_its_target_matches_over_target_and_not_under() -> None:
    over, under = [cac(30, 42)], [cac(30, 24)]
    above = parse_outcome("获客成本超出目标的活动", lookup, ALIASES)
    below = parse_outcome("获客成本低于目标的活动", lookup, ALIASES)
    assert above is not None
    assert below is not None
    assert match_outcome(above, over) > 0
    assert match_outcome(above, under) == 0
    assert match_outcome(below, under) > 0
    assert match_outcome(below, over) == 0
