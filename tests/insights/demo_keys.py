"""Each demo campaign's key metric (主要指标), written by hand, and its outcome computed by hand.

Tests compare the app's judgments with these, never with the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kb.campaigns.metrics import lookup

DEMO: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[2] / "kb" / "demo_data" / "campaigns.json").read_text(
        encoding="utf-8"
    )
)

# Each demo campaign's key metric (主要指标), chosen by reading its goal type and metrics: the
# metric its goal is judged by (GMV for gmv, 新增 for acquisition, 复购/留存 for retention,
# 召回 for reactivation, K值 for referral, 品牌搜索/曝光 for brand…), else its first metric
# with a target (demo-018, 021, 024, 029, 037: no metric of their goal type).
KEY_METRIC = {
    1: "GMV",
    2: "成交额",
    3: "GMV",
    4: "转化率",
    5: "召回人数",
    6: "新增用户数",
    7: "K值",
    8: "复购率",
    9: "召回人数",
    10: "K值",
    11: "复购率",
    12: "conversion rate",
    13: "GMV",
    14: "品牌搜索指数",
    15: "曝光量",
    16: "GMV",
    17: "90日留存",
    18: "完课率",
    19: "新增用户数",
    20: "K值",
    21: "周下单频次",
    22: "交易总额",
    23: "召回人数",
    24: "次日留存",
    25: "转化率",
    26: "K值",
    27: "新增用户数",
    28: "续费率",
    29: "年卡销量",
    30: "续费率",
    31: "GMV",
    32: "成交額",
    33: "新增用戶數",
    34: "品牌搜尋量",
    35: "續約率",
    36: "喚醒人數",
    37: "新增用戶數",
    38: "新增用户数",
    39: "转化率",
    40: "Reactivated customers",
    41: "Brand search volume",
    42: "K-factor",
    43: "Activation rate (first post within 7 days)",
    44: "D30 retention",
    45: "话题曝光",
    46: "宵夜活跃用户",
    47: "召回人数",
    48: "复购率",
    49: "GMV",
    50: "银发月活下单人数",
    51: "GMV",
    52: "K值",
    53: "GMV",
    54: "新增用户数",
    55: "续费率",
}


def key_metric_of(record: dict[str, Any]) -> dict[str, Any]:
    """Return the record's key metric by the table above."""
    name = KEY_METRIC[int(record["external_id"].removeprefix("demo-"))]
    return next(m for m in record["metrics"] if m["name"] == name)


def key_outcome(record: dict[str, Any]) -> tuple[float | None, bool | None]:
    """Attainment % and hit of the record's key metric, computed by hand."""
    metric = key_metric_of(record)
    if metric.get("target") is None or metric.get("actual") is None:
        return None, None
    entry = lookup(metric["name"])
    lower = entry is not None and entry.direction == "lower"
    target, actual = metric["target"], metric["actual"]
    if lower:
        return (target / actual * 100 if actual else None), actual <= target
    return (actual / target * 100 if target else None), actual >= target
