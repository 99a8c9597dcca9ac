"""Every enumeration of the domain once: its values (a ``Literal``) and their Chinese labels.

A leaf: imports nothing from kb, so schemas, importers, pages and the API all read it.
"""

from __future__ import annotations

from typing import Literal

GoalType = Literal[
    "acquisition", "activation", "retention", "reactivation", "conversion", "gmv", "brand", "referral"
]  # fmt: skip
Status = Literal["planned", "running", "completed", "cancelled"]
DocumentKind = Literal["strategy", "plan", "deck", "other"]
HypothesisResult = Literal["validated", "refuted", "inconclusive"]
SearchMode = Literal["keyword", "semantic", "hybrid"]
# How loud a warning is: a warning signal, a collision between campaigns.
Severity = Literal["high", "medium"]

# Label dicts (keyed by plain str, so any stored value can be looked up) iterate in display
# order; their keys are exactly the Literal's values
# (tests/test_vocab.py), so ``tuple(GOAL_TYPES)`` is the list of valid values.
GOAL_TYPES: dict[str, str] = {
    "acquisition": "拉新",
    "activation": "促活",
    "retention": "留存",
    "reactivation": "召回",
    "conversion": "转化",
    "gmv": "GMV",
    "brand": "品牌",
    "referral": "裂变",
}
STATUSES: dict[str, str] = {
    "planned": "计划中",
    "running": "进行中",
    "completed": "已完成",
    "cancelled": "已取消",
}
DOCUMENT_KINDS: dict[str, str] = {
    "strategy": "策略",
    "plan": "方案",
    "deck": "汇报材料",
    "other": "其他",
}
HYPOTHESIS_RESULTS: dict[str, str] = {
    "validated": "已验证",
    "refuted": "被推翻",
    "inconclusive": "无定论",
}
SEARCH_MODES: dict[str, str] = {"hybrid": "混合（推荐）", "keyword": "关键词", "semantic": "语义"}
SEVERITIES: dict[str, str] = {"high": "严重", "medium": "注意"}

# Campaigns that are not over yet: the ones a draft can collide with or an outlook is shown for.
ACTIVE_STATUSES: frozenset[str] = frozenset({"planned", "running"})

INDUSTRIES = (
    "电商", "生鲜", "母婴", "美妆", "在线教育", "本地生活", "内容平台", "社交", "健身", "跨境电商", "校园服务",
)  # fmt: skip
