"""The metric catalog: canonical metrics, the names teams write them under, and their direction.

Two campaigns can be compared on a metric only when the metric means the same thing, so every
metric name is mapped to a catalog key (GMV = 成交额 = 交易总额). Unknown names are kept as given.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Literal

import opencc

Direction = Literal["higher", "lower"]
# What a metric measures; the warning-signal rules compare traffic with value, watch costs, etc.
Kind = Literal["value", "traffic", "rate", "cost", "risk", "count", "satisfaction"]


@dataclass(frozen=True, slots=True)
class CatalogMetric:
    """A canonical metric: its key, Chinese label, direction, kind and accepted aliases."""

    key: str
    label: str
    direction: Direction
    kind: Kind
    aliases: tuple[str, ...]


CATALOG: tuple[CatalogMetric, ...] = (
    CatalogMetric(
        "gmv",
        "GMV",
        "higher",
        "value",
        (
            "gmv",
            "成交额",
            "交易总额",
            "成交总额",
            "销售额",
            "交易额",
            "商品交易总额",
            "gross merchandise value",
            "sales",
        ),
    ),
    CatalogMetric(
        "orders",
        "订单量",
        "higher",
        "value",
        ("订单量", "订单数", "下单数", "orders", "order count", "成交单量"),
    ),
    CatalogMetric(
        "paying_users",
        "付费用户数",
        "higher",
        "value",
        ("付费用户数", "付费人数", "付费用户", "paying users", "购买人数", "下单人数"),
    ),
    CatalogMetric(
        "conversion_rate",
        "转化率",
        "higher",
        "rate",
        (
            "转化率",
            "conversion rate",
            "conversion",
            "cvr",
            "支付转化率",
            "下单转化率",
            "轉換率",
            "轉化率",
        ),
    ),
    CatalogMetric(
        "aov",
        "客单价",
        "higher",
        "value",
        ("客单价", "aov", "average order value", "笔单价", "客單價"),
    ),
    CatalogMetric(
        "repurchase_rate",
        "复购率",
        "higher",
        "rate",
        ("复购率", "repurchase rate", "repeat purchase rate", "回购率", "復購率"),
    ),
    CatalogMetric(
        "retention_d1",
        "次日留存",
        "higher",
        "rate",
        ("次日留存", "次日留存率", "d1 retention", "day 1 retention", "1日留存"),
    ),
    CatalogMetric(
        "retention_d7",
        "7日留存",
        "higher",
        "rate",
        ("7日留存", "7日留存率", "七日留存", "d7 retention", "day 7 retention", "7天留存"),
    ),
    CatalogMetric(
        "retention_d30",
        "30日留存",
        "higher",
        "rate",
        (
            "30日留存",
            "30日留存率",
            "三十日留存",
            "d30 retention",
            "day 30 retention",
            "30天留存",
            "月留存",
        ),
    ),
    CatalogMetric("dau", "DAU", "higher", "traffic", ("dau", "日活", "日活跃用户", "日活跃用户数")),
    CatalogMetric("mau", "MAU", "higher", "traffic", ("mau", "月活", "月活跃用户", "月活跃用户数")),
    CatalogMetric(
        "roi",
        "ROI",
        "higher",
        "value",
        ("roi", "投资回报率", "投入产出比", "return on investment", "roas"),
    ),
    CatalogMetric(
        "cac",
        "获客成本",
        "lower",
        "cost",
        (
            "获客成本",
            "cac",
            "customer acquisition cost",
            "单客获客成本",
            "拉新成本",
            "獲客成本",
            "cpa",
            "单用户获取成本",
        ),
    ),
    CatalogMetric(
        "redemption_rate",
        "核销率",
        "higher",
        "rate",
        (
            "核销率",
            "redemption rate",
            "券核销率",
            "用券率",
            "核銷率",
            "优惠券核销率",
            "coupon redemption rate",
        ),
    ),
    CatalogMetric(
        "return_rate",
        "退货率",
        "lower",
        "risk",
        ("退货率", "return rate", "退款率", "退貨率", "refund rate"),
    ),
    CatalogMetric(
        "complaint_rate",
        "投诉率",
        "lower",
        "risk",
        ("投诉率", "complaint rate", "客诉率", "投訴率"),
    ),
    CatalogMetric(
        "k_factor",
        "K值",
        "higher",
        "rate",
        ("k值", "k factor", "k-factor", "k系数", "病毒系数", "viral coefficient"),
    ),
    CatalogMetric(
        "completion_rate",
        "完课率",
        "higher",
        "rate",
        ("完课率", "completion rate", "course completion rate", "完課率"),
    ),
    CatalogMetric(
        "nps",
        "NPS",
        "higher",
        "satisfaction",
        ("nps", "净推荐值", "net promoter score", "淨推薦值"),
    ),
    CatalogMetric(
        "new_users",
        "新增用户数",
        "higher",
        "count",
        (
            "新增用户数",
            "新增用户",
            "新用户数",
            "拉新人数",
            "new users",
            "新客数",
            "新增會員",
            "新增会员数",
            "new sign-ups",
            "sign-ups",
            "new sign-ups",
            "sign-ups",
        ),
    ),
    CatalogMetric(
        "reactivated_users",
        "召回人数",
        "higher",
        "count",
        (
            "召回人数",
            "召回用户数",
            "回流用户数",
            "唤醒人数",
            "reactivated users",
            "reactivated customers",
        ),
    ),
    CatalogMetric(
        "views",
        "观看人次",
        "higher",
        "traffic",
        (
            "观看人次",
            "观看量",
            "播放量",
            "views",
            "观看次数",
            "觀看人次",
            "pv",
            "video views",
            "播放次数",
        ),
    ),
    CatalogMetric(
        "impressions",
        "曝光量",
        "higher",
        "traffic",
        ("曝光量", "曝光", "impressions", "曝光次数", "话题曝光"),
    ),
    CatalogMetric("uv", "UV", "higher", "traffic", ("uv", "访客数", "独立访客", "unique visitors")),
    CatalogMetric(
        "ctr", "点击率", "higher", "rate", ("点击率", "ctr", "click-through rate", "點擊率")
    ),
    CatalogMetric("gross_margin", "毛利率", "higher", "rate", ("毛利率", "gross margin", "毛利")),
    CatalogMetric(
        "renewal_rate", "续费率", "higher", "rate", ("续费率", "renewal rate", "續費率", "续约率")
    ),
)

_BY_KEY = {metric.key: metric for metric in CATALOG}


@cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _normalize(name: str) -> str:
    """Fold width, script and case, so "ＧＭＶ", "gmv", "成交額" and "成交额" each are one name."""
    folded = _t2s().convert(unicodedata.normalize("NFKC", name)).casefold()
    return re.sub(r"[\s_\-]+", " ", folded).strip()


_BY_ALIAS = {
    _normalize(alias): metric for metric in CATALOG for alias in (*metric.aliases, metric.label)
}


def lookup(name: str) -> CatalogMetric | None:
    """Return the catalog metric a name refers to, or None when the name is not in the catalog."""
    return _BY_ALIAS.get(_normalize(name))


def by_key(key: str) -> CatalogMetric | None:
    """Return the catalog metric with this key."""
    return _BY_KEY.get(key)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a metric's actual compares with its target and baseline, respecting its direction."""

    attainment_pct: float | None
    lift_pct: float | None
    hit: bool | None


def assess(
    direction: Direction, baseline: float | None, target: float | None, actual: float | None
) -> Outcome:
    """Compute attainment of target and lift over baseline, both in percent.

    Attainment is actual/target for higher-is-better metrics and target/actual for lower-is-better
    ones (a CAC of 40 against a target of 50 is 125 %). Lift is the change from baseline in the
    good direction: a CAC falling from 50 to 40 is a lift of +20 %. Values that cannot be computed
    (missing numbers, a zero divisor) are None.
    """
    attainment = hit = None
    if target is not None and actual is not None:
        hit = actual >= target if direction == "higher" else actual <= target
        if direction == "higher" and target != 0:
            attainment = actual / target * 100
        elif direction == "lower" and actual != 0:
            attainment = target / actual * 100
    lift = None
    if baseline is not None and actual is not None and baseline != 0:
        change = (actual - baseline) / abs(baseline) * 100
        lift = change if direction == "higher" else -change
    # Finite inputs can still overflow (1e308 against a target of 1e-300): no number, not inf.
    return Outcome(attainment_pct=_finite(attainment), lift_pct=_finite(lift), hit=hit)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
