"""Test data: a complete campaign payload with fresh defaults on every call."""

from __future__ import annotations

from typing import Any


def campaign_payload(**overrides: Any) -> dict[str, Any]:
    """Return a valid API body that sets every field, with ``overrides`` applied."""
    body: dict[str, Any] = {
        "title": "双十一沉睡会员召回：满减券 + 企微社群",
        "industry": "电商",
        "department": "会员运营中心",
        "business_line": "优选商城",
        "goal_type": "reactivation",
        "goal": "30 天内召回 5 万名 90 天未下单用户，召回用户首单转化率达到 12%",
        "audience": ["沉睡用户", "价格敏感用户"],
        "products": ["生鲜礼盒", "粮油"],
        "rewards": [
            {"type": "满减券", "detail": "满 199 减 40", "stackable": True},
            {"type": "积分", "detail": "下单返 2 倍积分", "stackable": False},
        ],
        "channels": ["企业微信社群", "短信", "App 推送"],
        "start_date": "2024-10-20",
        "end_date": "2024-11-12",
        "status": "completed",
        "budget_cny": 350000.0,
        "metrics": [
            {
                "name": "成交额",
                "unit": "万元",
                "baseline": 820.0,
                "target": 1000.0,
                "actual": 1130.5,
            },
            {"name": "转化率", "unit": "%", "baseline": 8.0, "target": 12.0, "actual": 9.6},
            {"name": "获客成本", "unit": "元", "baseline": 40.0, "target": 35.0, "actual": 52.0},
            {"name": "老客惊喜度", "unit": "分", "baseline": None, "target": 8.0, "actual": None},
        ],
        "summary": "## 背景\n双十一前召回 **沉睡会员**。",
        "went_well": "- 企微社群分层触达，打开率 38%",
        "problems": "- 短信通道被限流，触达延迟 2 天（执行偏差）",
        "lessons": "连续订购立减 比 限时优惠 对复购的拉动高 27%",
        "recommendations": "提前 2 周报备短信通道",
        "hypotheses": [
            {
                "statement": "海报 A 的点击率比海报 B 高 20%",
                "result": "validated",
                "evidence": "A/B 各 1 万人",
            },
        ],
        "documents": [
            {
                "title": "召回策略",
                "kind": "strategy",
                "body": "## 分层\n| 层级 | 券 |\n|---|---|\n| 高 | 40 |",
            },
        ],
        "tags": ["双十一", "召回"],
        "external_id": "test-001",
    }
    body.update(overrides)
    return body
