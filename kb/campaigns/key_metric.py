"""A campaign's key metric (主要指标): the one its goal is judged by, and how it turned out.

The author may mark one metric ``key``. When none is marked (every record written before the
choice existed), the key metric is the first metric with a target that matches the goal type
(``GOAL_METRICS``: GMV for a GMV campaign, 新增/首单 for 拉新, 复购/留存 for 留存…), else the first
metric with a target. A traffic metric that rose while the key metric missed is no success.

A campaign that is not completed has no verdict yet: it is "进行中（截至 <date>）", never
"未达成", and stays out of hit rates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

from kb.campaigns import metrics as metric_catalog
from kb.models import Metric
from search.normalize import normalize

Source = Literal["author", "goal", "first_target"]


@dataclass(frozen=True, slots=True)
class GoalMetrics:
    """What a goal type is judged by: catalog keys in order of preference, then name patterns."""

    keys: tuple[str, ...]
    # Folded names the catalog does not (yet) know: "宵夜活跃用户", "银发月活下单人数".
    names: re.Pattern[str]


GOAL_METRICS: dict[str, GoalMetrics] = {
    "gmv": GoalMetrics(("gmv",), re.compile(r"gmv|成交额|交易总额|销售额|交易额")),
    "acquisition": GoalMetrics(
        ("new_users", "first_orders", "new_customer_share"),
        re.compile(r"新增|首单|首购|新客|拉新|new (users?|customers?)|sign-?ups?"),
    ),
    "retention": GoalMetrics(
        (
            "repurchase_rate",
            "retention_d30",
            "retention_d7",
            "retention_d90",
            "retention",
            "retention_d1",
            "renewal_rate",
            "renewals",
        ),
        re.compile(r"复购|回购|留存|续费|续约|retention|repeat|renewal"),
    ),
    "reactivation": GoalMetrics(
        ("reactivated_users", "reactivation_rate"),
        re.compile(r"唤醒|召回|回流|reactivat|win-?back"),
    ),
    "conversion": GoalMetrics(("conversion_rate",), re.compile(r"转化率|转换率|conversion|cvr")),
    "activation": GoalMetrics(
        ("active_users", "dau", "mau", "activation_rate"),
        re.compile(r"活跃|日活|月活|dau|mau|激活|activ"),
    ),
    "referral": GoalMetrics(
        ("k_factor",), re.compile(r"k值|k-?factor|k系数|邀请|裂变|invite|referral")
    ),
    "brand": GoalMetrics(
        ("brand_search", "impressions", "nps"),
        re.compile(r"品牌搜[索寻]|搜索指数|曝光|声量|nps|净推荐|brand search|impressions"),
    ),
}


class MetricLike(Protocol):
    """What choosing a key metric reads of a metric (a stored ``Metric`` or a plain record)."""

    @property
    def name(self) -> str: ...
    @property
    def catalog_key(self) -> str | None: ...
    @property
    def target(self) -> float | None: ...
    @property
    def key(self) -> bool: ...


def choose(goal_type: str | None, metrics: Sequence[MetricLike]) -> tuple[int, Source] | None:
    """Return the position of the key metric and why it is the one; None when there is none."""
    for i, metric in enumerate(metrics):
        if metric.key:
            return i, "author"
    targeted = [(i, m) for i, m in enumerate(metrics) if m.target is not None]
    if not targeted:
        return None
    wanted = GOAL_METRICS.get(goal_type or "")
    if wanted is not None:
        keys = [(i, _catalog_key(m)) for i, m in targeted]
        for catalog_key in wanted.keys:
            found = next((i for i, k in keys if k == catalog_key), None)
            if found is not None:
                return found, "goal"
        for i, m in targeted:
            if wanted.names.search(_fold(m.name)):
                return i, "goal"
    return targeted[0][0], "first_target"


def _catalog_key(metric: MetricLike) -> str | None:
    if metric.catalog_key:
        return metric.catalog_key
    entry = metric_catalog.lookup(metric.name)
    return entry.key if entry else None


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", normalize(text)[0]).strip()


class AssessedMetric(MetricLike, Protocol):
    """A metric with the numbers an assessment needs."""

    @property
    def baseline(self) -> float | None: ...
    @property
    def actual(self) -> float | None: ...


class CampaignLike(Protocol):
    """What the verdict reads of a campaign."""

    @property
    def goal_type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def end_date(self) -> date: ...
    @property
    def metrics(self) -> Sequence[AssessedMetric]: ...


@dataclass(frozen=True, slots=True)
class KeyMetric:
    """A campaign's key metric and how it turned out.

    ``hit`` is None until the campaign is completed (and when target or actual is missing);
    ``attainment_pct`` of a running campaign is on partial numbers, ``as_of`` says until when.
    """

    name: str
    position: int
    source: Source
    attainment_pct: float | None
    hit: bool | None
    finished: bool
    as_of: date | None
    cancelled: bool = False

    @property
    def verdict(self) -> str:
        """Return the Chinese verdict: 达成, 未达成, 进行中（截至 …）, 已取消 or 无实际值."""
        if self.cancelled:
            return "已取消"
        if not self.finished:
            return "进行中" + (f"（截至 {_zh_date(self.as_of)}）" if self.as_of else "")
        if self.hit is None:
            return "无实际值"
        return "达成" if self.hit else "未达成"


def key_metric(campaign: CampaignLike, today: date | None = None) -> KeyMetric | None:
    """Return the campaign's key metric, assessed; None when no metric can be the key one.

    ``today``: the date a running campaign's numbers are read on (its end date when earlier).
    """
    metrics = list(campaign.metrics)
    chosen = choose(campaign.goal_type, metrics)
    if chosen is None:
        return None
    position, source = chosen
    metric = metrics[position]
    direction: metric_catalog.Direction = "higher"
    if (key := _catalog_key(metric)) and (entry := metric_catalog.by_key(key)):
        direction = entry.direction
    outcome = metric_catalog.assess(direction, metric.baseline, metric.target, metric.actual)
    finished = campaign.status == "completed"
    cancelled = campaign.status == "cancelled"
    as_of = None if finished or cancelled else min(today or date.today(), campaign.end_date)
    return KeyMetric(
        name=metric.name,
        position=position,
        source=source,
        attainment_pct=outcome.attainment_pct,
        hit=outcome.hit if finished else None,
        finished=finished,
        as_of=as_of,
        cancelled=cancelled,
    )


def _zh_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def is_key_metric(metric: Metric) -> bool:
    """Return whether a stored metric is its campaign's key metric."""
    campaign = metric.campaign
    if campaign is None:
        return bool(metric.key)
    metrics = list(campaign.metrics)
    chosen = choose(campaign.goal_type, metrics)
    return chosen is not None and metrics[chosen[0]] is metric
