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
# Enumerations whose behaviour lives in a feature (the lesson themes' keywords in
# kb/insights/lessons.py, the roles' rights in kb/accounts): their Chinese names are here, so an
# error message names a value the way the pages do (tests/test_vocab.py holds them together).
THEMES: dict[str, str] = {
    "reward": "奖励设计",
    "audience": "人群",
    "channel": "渠道",
    "timing": "时机与节奏",
    "budget": "预算与成本",
    "ops": "技术与运营",
    "risk": "风控",
    "other": "其他",
}
LESSON_KINDS: dict[str, str] = {"lesson": "经验", "recommendation": "建议", "hypothesis": "假设"}
ROLES: dict[str, str] = {"viewer": "查看者", "editor": "编辑者", "admin": "管理员"}
# The parts of a metric condition (search filter): the value compared and how.
METRIC_FIELDS: dict[str, str] = {
    "actual": "实际值",
    "target": "目标值",
    "attain": "达成率",
    "lift": "较基线",
}
COMPARISONS: dict[str, str] = {">=": "≥", "<=": "≤", ">": "＞", "<": "＜", "=": "="}

# ---- field names ---------------------------------------------------------------------------
# Every field code a person can meet in a form, a filter or an error: the campaign record (its
# labels are the form's, the history's and the spreadsheet header's), then the rows inside it,
# then the filters and the other forms. ``field_label`` reads dotted paths with them.
FIELD_LABELS: dict[str, str] = {
    "title": "活动名称",
    "industry": "行业",
    "department": "负责部门",
    "business_line": "业务线 / 品牌",
    "goal_type": "目标类型",
    "goal": "目标描述",
    "audience": "目标人群",
    "products": "商品 / 品类",
    "rewards": "奖励与优惠",
    "channels": "渠道",
    "start_date": "开始日期",
    "end_date": "结束日期",
    "status": "状态",
    "budget_cny": "预算（元）",
    "metrics": "数据指标",
    "summary": "背景与概述",
    "went_well": "做得好的",
    "problems": "问题与原因",
    "lessons": "经验教训",
    "recommendations": "下次建议",
    "hypotheses": "验证的假设",
    "documents": "文档",
    "tags": "标签",
    "external_id": "外部编号",
}
# The campaign fields, in the order the record, its history and its exports show them.
CAMPAIGN_FIELDS = tuple(FIELD_LABELS)
ROW_FIELD_LABELS: dict[str, dict[str, str]] = {
    "rewards": {"type": "奖励类型", "detail": "内容", "stackable": "可叠加"},
    "metrics": {
        "name": "指标名",
        "unit": "单位",
        "baseline": "基线",
        "target": "目标",
        "actual": "实际",
        "key": "主要指标",
    },
    "hypotheses": {"statement": "假设", "result": "结论", "evidence": "依据"},
    "documents": {"title": "标题", "kind": "类型", "body": "正文"},
}
FIELD_LABELS.update(
    {
        # search, list, portfolio and lesson filters
        "q": "搜索词",
        "mode": "搜索方式",
        "limit": "条数",
        "offset": "翻页位置",
        "page": "页码",
        "per_page": "每页条数",
        "channel": "渠道",
        "reward_type": "奖励类型",
        "date_from": "起始日期",
        "date_to": "截止日期",
        "metric_range": "指标条件",
        "mf_metric": "指标",
        "mf_field": "比较的值",
        "mf_op": "比较方式",
        "mf_value": "数值",
        "missed": "只看未达标",
        "signal": "数据预警",
        "expand": "补充行业术语",
        "include_weak": "显示可能相关",
        "as_text": "按原词搜索的条件",
        "theme": "主题",
        "kind": "类型",
        # drafts
        "text": "方案描述",
        "draft_key": "草案标识",
        "campaign_id": "活动编号",
        # playbooks
        "body": "正文",
        "supporting_ids": "支持的活动",
        "contradicting_ids": "反驳的活动",
        # accounts and admin
        "username": "用户名",
        "display_name": "显示名",
        "password": "密码",
        "current_password": "当前密码",
        "new_password": "新密码",
        "new_password_again": "再次输入新密码",
        "role": "角色",
        "name": "名称",
        "user": "用户",
        "token": "令牌",
        "version": "版本号",
        "file": "文件",
        "format": "格式",
        "": "提交的内容",
    }
)
# Fields whose items are numbered (audience.2 → 目标人群第 3 项) rather than rows of fields.
_ITEM_NOUNS = {"metric_range": "条"}


def field_label(path: str) -> str:
    """Name a field path in Chinese: "metrics.2.target" → "数据指标第 3 行 · 目标".

    A part the vocabulary does not know is left out rather than shown as code; a path with no
    known part at all reads "提交的内容".
    """
    parts = path.split(".") if path else [""]
    head, rest = parts[0], parts[1:]
    label = FIELD_LABELS.get(head, "")
    if not label:
        return FIELD_LABELS[""]
    if rest and rest[0].isdigit():
        position = int(rest[0]) + 1
        rows = ROW_FIELD_LABELS.get(head)
        label += f"第 {position} {'行' if rows else _ITEM_NOUNS.get(head, '项')}"
        if rows and len(rest) > 1 and rest[1] in rows:
            label += f" · {rows[rest[1]]}"
    return label


# Every enumeration's values with their names, for messages that list the allowed values.
_ALL_ENUMERATIONS = (
    GOAL_TYPES, STATUSES, DOCUMENT_KINDS, HYPOTHESIS_RESULTS, SEARCH_MODES, SEVERITIES, THEMES,
    LESSON_KINDS, ROLES, METRIC_FIELDS,
)  # fmt: skip


def value_label(field: str, value: str) -> str:
    """Return the Chinese name of an enumeration value ("acquisition" → "拉新"), else the value."""
    owner = {
        "goal_type": GOAL_TYPES,
        "status": STATUSES,
        "kind": DOCUMENT_KINDS,
        "result": HYPOTHESIS_RESULTS,
        "mode": SEARCH_MODES,
        "theme": THEMES,
        "role": ROLES,
    }.get(field)
    if owner is not None and value in owner:
        return owner[value]
    return next((labels[value] for labels in _ALL_ENUMERATIONS if value in labels), value)
