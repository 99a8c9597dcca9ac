"""The metric catalog: canonical metrics, the names teams write them under, and their direction.

Two campaigns can be compared on a metric only when the metric means the same thing, so every
metric name is mapped to a catalog key (GMV = 成交额 = 交易总额). Unknown names are kept as given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Literal

from kb import parsing
from search.normalize import fold

Direction = Literal["higher", "lower"]
# What a metric measures; the warning-signal rules compare traffic with value, watch costs, etc.
Kind = Literal["value", "traffic", "rate", "cost", "risk", "count", "satisfaction"]


# A kind in words: a forecast names the family it pooled when too few analogs measured a metric.
KIND_LABELS: dict[Kind, str] = {
    "value": "成交与价值类",
    "traffic": "流量与曝光类",
    "rate": "比率类",
    "cost": "成本类",
    "risk": "风险类",
    "count": "人数与数量类",
    "satisfaction": "满意度类",
}


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
            "转换率",
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
            "新增",
            "新客",
            "注册用户数",
            "新注册用户数",
            "拉新数",
            "注册人数",
            "注册数",
            "新增注册",
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
            "观看人数",
            "浏览量",
            "page views",
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
        "renewal_rate",
        "续费率",
        "higher",
        "rate",
        ("续费率", "renewal rate", "續費率", "续约率", "续报率", "续课率"),
    ),
    # Names found in the demo data, the importer samples and what teams commonly write.
    CatalogMetric(
        "first_orders",
        "首单数",
        "higher",
        "count",
        (
            "首单",
            "首单数",
            "首单用户数",
            "首单人数",
            "首购人数",
            "首购用户数",
            "first orders",
            "first purchases",
            "first order customers",
        ),
    ),
    CatalogMetric(
        "retention", "留存率", "higher", "rate", ("留存", "留存率", "retention", "retention rate")
    ),
    CatalogMetric(
        "retention_d90",
        "90日留存",
        "higher",
        "rate",
        ("90日留存", "90日留存率", "90天留存", "d90 retention", "day 90 retention"),
    ),
    CatalogMetric(
        "reactivation_rate",
        "召回率",
        "higher",
        "rate",
        ("召回率", "唤醒率", "回流率", "reactivation rate"),
    ),
    CatalogMetric(
        "group_success_rate",
        "成团率",
        "higher",
        "rate",
        ("成团率", "拼团成功率", "group success rate"),
    ),
    CatalogMetric("loss_rate", "损耗率", "lower", "risk", ("损耗率", "报损率", "spoilage rate")),
    CatalogMetric(
        "fulfilment_rate",
        "履约率",
        "higher",
        "rate",
        (
            "履约率",
            "次日达履约率",
            "准时履约率",
            "准时率",
            "on time delivery rate",
            "fulfilment rate",
            "fulfillment rate",
        ),
    ),
    CatalogMetric(
        "new_customer_share",
        "新客占比",
        "higher",
        "rate",
        ("新客占比", "新用户占比", "new customer share"),
    ),
    CatalogMetric(
        "member_share",
        "会员贡献占比",
        "higher",
        "rate",
        ("会员贡献占比", "会员销售占比", "会员占比", "member share"),
    ),
    CatalogMetric(
        "renewals",
        "续费人数",
        "higher",
        "count",
        ("续费人数", "续费用户数", "续约人数", "renewals"),
    ),
    CatalogMetric("engagement_rate", "互动率", "higher", "rate", ("互动率", "engagement rate")),
    CatalogMetric(
        "open_rate",
        "打开率",
        "higher",
        "rate",
        ("打开率", "邮件打开率", "email open rate", "open rate"),
    ),
    CatalogMetric("activation_rate", "激活率", "higher", "rate", ("激活率", "activation rate")),
    CatalogMetric(
        "brand_search",
        "品牌搜索量",
        "higher",
        "traffic",
        (
            "品牌搜索量",
            "品牌搜索指数",
            "品牌搜寻量",
            "搜索指数",
            "brand search volume",
            "brand search index",
        ),
    ),
    CatalogMetric(
        "ugc_posts",
        "UGC 篇数",
        "higher",
        "count",
        ("ugc篇数", "ugc 篇数", "ugc数", "ugc posts", "笔记数", "种草笔记数"),
    ),
    CatalogMetric(
        "creators",
        "入驻达人数",
        "higher",
        "count",
        ("入驻达人数", "达人入驻数", "签约达人数", "creators onboarded", "creators"),
    ),
    CatalogMetric(
        "store_visits",
        "到店人次",
        "higher",
        "traffic",
        ("到店人次", "到店人数", "到店体验", "到店客流", "store visits"),
    ),
    CatalogMetric(
        "units_sold", "销量", "higher", "value", ("销量", "销售件数", "售出件数", "units sold")
    ),
    CatalogMetric(
        "purchase_frequency",
        "下单频次",
        "higher",
        "value",
        ("下单频次", "购买频次", "周下单频次", "purchase frequency"),
    ),
    CatalogMetric(
        "usage_frequency",
        "人均服务次数",
        "higher",
        "value",
        ("人均服务次数", "人均使用次数", "人均到店次数"),
    ),
    CatalogMetric(
        "listings", "上架件数", "higher", "count", ("上架件数", "上架商品数", "listings")
    ),
    CatalogMetric(
        "active_users",
        "活跃用户数",
        "higher",
        "traffic",
        ("活跃用户数", "活跃用户", "活跃人数", "active users"),
    ),
    # More names retros commonly carry (私域, 直播, 内容, 教育, 会员 campaigns), so a forecast
    # and the signals can read them.
    CatalogMetric(
        "revenue",
        "营收",
        "higher",
        "value",
        ("营收", "营业额", "销售收入", "收入", "营业收入", "revenue", "sales revenue"),
    ),
    CatalogMetric(
        "profit", "利润", "higher", "value", ("利润", "毛利额", "净利润", "利润额", "profit")
    ),
    CatalogMetric(
        "arpu",
        "ARPU",
        "higher",
        "value",
        ("arpu", "人均收入", "每用户平均收入", "用户平均收入", "average revenue per user"),
    ),
    CatalogMetric("ltv", "LTV", "higher", "value", ("ltv", "生命周期价值", "用户终身价值")),
    CatalogMetric(
        "items_per_order", "连带率", "higher", "value", ("连带率", "件单比", "items per order")
    ),
    CatalogMetric(
        "participants",
        "参与人数",
        "higher",
        "traffic",
        (
            "参与人数",
            "参与人次",
            "参与用户数",
            "参与量",
            "活动参与人数",
            "participants",
            "participations",
        ),
    ),
    CatalogMetric(
        "registrations",
        "报名人数",
        "higher",
        "count",
        ("报名人数", "报名数", "报名量", "registrations", "registered users"),
    ),
    CatalogMetric(
        "coupons_claimed",
        "领券人数",
        "higher",
        "count",
        ("领券人数", "领券量", "领券数", "领取人数", "coupons claimed", "coupon claims"),
    ),
    CatalogMetric(
        "private_adds",
        "私域新增",
        "higher",
        "count",
        (
            "私域新增",
            "入群人数",
            "进群人数",
            "加群人数",
            "新增入群",
            "加好友数",
            "添加好友数",
            "企微加粉数",
            "加粉数",
            "企微新增",
            "私域引流人数",
            "private domain adds",
        ),
    ),
    CatalogMetric(
        "followers",
        "新增粉丝",
        "higher",
        "count",
        (
            "新增粉丝",
            "新增粉丝数",
            "涨粉",
            "涨粉数",
            "粉丝增长",
            "新增关注",
            "新增关注数",
            "followers gained",
            "new followers",
        ),
    ),
    CatalogMetric(
        "invites",
        "邀请人数",
        "higher",
        "count",
        ("邀请人数", "邀请数", "邀请量", "受邀人数", "invites", "invitations"),
    ),
    CatalogMetric(
        "installs",
        "下载量",
        "higher",
        "count",
        ("下载量", "下载数", "安装量", "app下载量", "downloads", "installs", "app installs"),
    ),
    CatalogMetric(
        "trial_users",
        "试听人数",
        "higher",
        "count",
        ("试听人数", "试课人数", "体验课人数", "试听数", "trial sign ups", "trial users"),
    ),
    CatalogMetric(
        "members",
        "会员数",
        "higher",
        "count",
        ("会员数", "会员人数", "开卡数", "开卡人数", "入会人数", "members", "member sign ups"),
    ),
    CatalogMetric(
        "activations",
        "激活人数",
        "higher",
        "count",
        ("激活人数", "激活用户数", "激活数", "activated users", "activations"),
    ),
    CatalogMetric(
        "engagements",
        "互动量",
        "higher",
        "traffic",
        ("互动量", "互动数", "互动次数", "点赞数", "评论数", "转发量", "分享次数", "engagements"),
    ),
    CatalogMetric(
        "watch_time",
        "人均观看时长",
        "higher",
        "traffic",
        ("人均观看时长", "观看时长", "人均停留时长", "停留时长", "watch time", "time on page"),
    ),
    CatalogMetric(
        "peak_online",
        "峰值在线人数",
        "higher",
        "traffic",
        ("峰值在线人数", "峰值在线", "最高在线人数", "在线人数", "peak concurrent viewers"),
    ),
    CatalogMetric(
        "add_to_cart_rate",
        "加购率",
        "higher",
        "rate",
        ("加购率", "加车率", "add to cart rate", "add-to-cart rate"),
    ),
    CatalogMetric("share_rate", "分享率", "higher", "rate", ("分享率", "转发率", "share rate")),
    CatalogMetric(
        "participation_rate",
        "参与率",
        "higher",
        "rate",
        ("参与率", "活动参与率", "participation rate"),
    ),
    CatalogMetric(
        "attendance_rate", "到课率", "higher", "rate", ("到课率", "出勤率", "attendance rate")
    ),
    CatalogMetric(
        "sell_through_rate",
        "售罄率",
        "higher",
        "rate",
        ("售罄率", "动销率", "sell-through rate", "sell through rate"),
    ),
    CatalogMetric(
        "positive_rating",
        "好评率",
        "higher",
        "satisfaction",
        ("好评率", "满意度", "满意率", "csat", "customer satisfaction", "positive rating"),
    ),
    CatalogMetric(
        "churn_rate",
        "流失率",
        "lower",
        "risk",
        ("流失率", "用户流失率", "会员流失率", "churn rate", "churn"),
    ),
    CatalogMetric("bounce_rate", "跳出率", "lower", "risk", ("跳出率", "bounce rate")),
    CatalogMetric(
        "cpc",
        "单次点击成本",
        "lower",
        "cost",
        ("cpc", "单次点击成本", "点击成本", "cost per click"),
    ),
    CatalogMetric("cpm", "千次曝光成本", "lower", "cost", ("cpm", "千次曝光成本", "千次展示成本")),
    CatalogMetric(
        "cost_ratio",
        "营销费比",
        "lower",
        "cost",
        ("营销费比", "费比", "营销费用率", "费用率", "marketing cost ratio"),
    ),
)

_BY_KEY = {metric.key: metric for metric in CATALOG}


def _normalize(name: str) -> str:
    """Fold width, script and case, so "ＧＭＶ", "gmv", "成交額" and "成交额" each are one name."""
    return re.sub(r"[\s_\-]+", " ", fold(name)).strip()


@cache
def _by_alias() -> dict[str, CatalogMetric]:
    # Built on first use: folding loads OpenCC's tables, and importing does no I/O.
    return {
        _normalize(alias): metric for metric in CATALOG for alias in (*metric.aliases, metric.label)
    }


def lookup(name: str) -> CatalogMetric | None:
    """Return the catalog metric a name refers to, or None when the name is not in the catalog."""
    return _by_alias().get(_normalize(name))


def by_key(key: str) -> CatalogMetric | None:
    """Return the catalog metric with this key."""
    return _BY_KEY.get(key)


@dataclass(frozen=True, slots=True)
class MetricMatch:
    """A metric name resolved to the catalog, how (in Chinese) and how sure (0–1)."""

    metric: CatalogMetric
    confidence: float
    basis: str


# Parenthesised notes and unit hints that do not change what is measured: "ROI（倍）",
# "Activation rate (first post within 7 days)", "GMV/万元".
_NOTE = re.compile(r"\s*[(\[（【].*?[)\]）】]\s*|\s*/\s*\S+$")
_ASCII = re.compile(r"^[a-z0-9 .:%+-]+$")


@cache
def _aliases_longest_first() -> list[tuple[str, CatalogMetric]]:
    return sorted(_by_alias().items(), key=lambda item: -len(item[0]))


# Teams reuse a few hundred names: a corpus prior over 50k metric rows matches each once.
@lru_cache(maxsize=8192)
def match(name: str, unit: str = "") -> MetricMatch | None:
    """Resolve a metric name to the catalog, also when teams decorate or qualify it.

    In order: the name itself (confidence 1.0); the name without a parenthesised note or unit
    hint (0.9); a catalog name the name ends with ("私教课转换率" → 转化率) or, for English,
    contains as whole words ("Video views in app" → views). A partial match's confidence is
    0.5 + 0.4 × the share of the name the catalog name covers, so a bare qualifier around a
    long catalog name scores near 0.9 and a short one in a long name near 0.5; it is a stated
    measure of overlap, not fitted. A partial match is refused when the unit contradicts the
    metric's kind (a 率 in 人) or when two catalog metrics fit equally well.
    """
    entry = lookup(name)
    if entry is not None:
        return MetricMatch(entry, 1.0, "名称一致")
    folded = _normalize(name)
    bare = _normalize(_NOTE.sub("", folded))
    if bare and bare != folded and bare in _by_alias():
        return MetricMatch(_by_alias()[bare], 0.9, "去掉括注后名称一致")
    compact = bare.replace(" ", "")
    found: list[tuple[str, CatalogMetric]] = []
    for alias, metric in _aliases_longest_first():
        if found and len(alias) < len(found[0][0]):
            break
        if len(alias) < 2 or not _unit_fits(metric, unit):
            continue
        if _ASCII.match(alias):
            # Whole words; a Chinese qualifier is a boundary too ("直播间NPS", "小程序K-factor").
            hit = re.search(rf"(^|[^a-z0-9]){re.escape(alias)}([^a-z0-9]|$)", bare) is not None
        else:
            hit = compact.endswith(alias.replace(" ", ""))
        if hit:
            found.append((alias, metric))
    if not found or len({metric.key for _, metric in found}) > 1:
        return None
    alias, metric = found[0]
    share = min(1.0, len(alias.replace(" ", "")) / max(len(compact), 1))
    return MetricMatch(metric, round(0.5 + 0.4 * share, 2), f"名称含「{alias}」")


# Units are read by kb/parsing.py (read_unit), the one reader of typed numbers and units; this
# reads the folded text (Traditional, width and case) so that "萬 RMB" is 万元.
Dimension = parsing.Dimension


def unit_dimension(unit: str) -> tuple[Dimension, float]:
    """Return what a unit measures and its scale to the base unit (万元 → money, 10 000)."""
    reading = parsing.read_unit(fold(unit))
    return reading.dimension, reading.scale


# Metrics that are ratios without being rates: an empty unit means "倍" for them.
_RATIO_METRICS = frozenset({"roi"})


def blank_unit(metric: CatalogMetric) -> Dimension:
    """Return what an empty unit means for a metric: a ratio for rates and ROI, else unknown."""
    return "ratio" if metric.kind == "rate" or metric.key in _RATIO_METRICS else "unknown"


def units_compatible(first: str, second: str, *, blank: Dimension = "unknown") -> bool:
    """Say whether two units can measure the same metric (``blank``: what "" means).

    Percent and ratio are one dimension (ROI 350 % = 3.5 倍 = 1:3.5); an unknown unit fits any;
    currencies fit each other (a forecast compares each campaign with its own target).
    """
    a, b = (unit_dimension(u)[0] if u.strip() else blank for u in (first, second))
    dimensionless = {"percent", "ratio"}
    return a == b or "unknown" in (a, b) or (a in dimensionless and b in dimensionless)


# Names outside the catalog: words that make a metric lower-is-better, and rate-like endings.
_LOWER_WORDS = re.compile(
    r"成本|费用|费比|流失|退货|退款|投诉|客诉|差评|跳出|损耗|卸载|cost|churn|bounce|refund|complaint"
)
_RATE_ENDING = re.compile(r"(率|占比|比例|rate|ratio|share)$")
# How sure a classification by unit and wording alone is: stated, not fitted (a catalog name
# is 1.0, a partial catalog match 0.5–0.9).
INFERRED_CONFIDENCE = 0.4


@lru_cache(maxsize=8192)
def resolve(name: str, unit: str = "") -> MetricMatch | None:
    """Resolve a name through the catalog (``match``), else classify it by unit and wording.

    A name outside the catalog becomes its own metric (key ``~`` + the folded name, so the
    same name written the same way in two campaigns is one metric) of the kind its unit and
    ending say: a % or a name ending in 率/占比 is a rate, money a value, 人/次/单 a count, 倍 a
    value; words such as 成本, 流失, 退货, 投诉 make it lower-is-better (cost or risk). A unit
    that says nothing (分, blank) leaves it unresolved. Only the forecast reads these.
    """
    found = match(name, unit)
    if found is not None:
        return found
    bare = _normalize(_NOTE.sub("", _normalize(name))) or _normalize(name)
    if not bare:
        return None
    dimension = unit_dimension(unit)[0]
    lower = _LOWER_WORDS.search(bare) is not None
    kind: Kind
    if dimension == "percent" or (dimension == "unknown" and _RATE_ENDING.search(bare)):
        kind = "risk" if lower else "rate"
    elif dimension in ("money", "ratio"):
        kind = "cost" if lower else "value"
    elif dimension == "count":
        kind = "risk" if lower else "count"
    else:
        return None
    metric = CatalogMetric(f"~{bare}", name.strip(), "lower" if lower else "higher", kind, ())
    return MetricMatch(metric, INFERRED_CONFIDENCE, f"按单位与名称归为{KIND_LABELS[kind]}")


def _unit_fits(metric: CatalogMetric, unit: str) -> bool:
    dimension = unit_dimension(unit)[0]
    if metric.kind == "rate":
        return dimension in ("percent", "ratio", "unknown")
    if metric.kind in ("count", "traffic"):
        return dimension in ("count", "other", "unknown")
    return True


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
