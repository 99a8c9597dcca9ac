"""Chinese labels of the enumerated values, for pages and forms."""

GOAL_TYPES = {
    "acquisition": "拉新",
    "activation": "促活",
    "retention": "留存",
    "reactivation": "召回",
    "conversion": "转化",
    "gmv": "GMV",
    "brand": "品牌",
    "referral": "裂变",
}
STATUSES = {"planned": "计划中", "running": "进行中", "completed": "已完成", "cancelled": "已取消"}
DOCUMENT_KINDS = {"strategy": "策略", "plan": "方案", "deck": "汇报材料", "other": "其他"}
HYPOTHESIS_RESULTS = {"validated": "已验证", "refuted": "被推翻", "inconclusive": "无定论"}
INDUSTRIES = (
    "电商", "生鲜", "母婴", "美妆", "在线教育", "本地生活", "内容平台", "社交", "健身", "跨境电商", "校园服务",
)  # fmt: skip
