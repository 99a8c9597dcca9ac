"""Audience segments: one key per segment however it is spelt (寶 媽 = 宝妈, 新客 = 新用户).

Collisions (drafts) and the portfolio's reach (insights) both compare audiences by this key.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from search.normalize import fold

# Only true equivalences: two names for the same people. Segments that merely overlap stay apart
# (沉睡用户 ≠ 流失用户 ≠ 流失风险用户, 宝妈 ≠ 母婴人群 ≠ 孕期家庭, 沉睡会员 ≠ 沉睡用户, 白领 ≠ 上班族),
# because false collisions teach planners to ignore the warning. The first name is canonical.
AUDIENCE_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("沉睡用户", "沉默用户", "休眠用户", "dormant users", "dormant user"),
    ("新用户", "新客", "新客户", "new users", "new user", "new customers"),
    ("宝妈", "宝妈用户", "妈妈用户", "宝宝妈妈", "妈妈群体"),
    ("价格敏感用户", "价格敏感人群", "价格敏感型用户", "price-sensitive users"),
    ("银发用户", "银发族", "银发人群", "老年用户"),
    ("大学生", "大学生用户", "在校大学生", "college students"),
    ("白领", "白领用户", "白领人群"),
)


@lru_cache(maxsize=4096)
def label_key(text: str) -> str:
    """Fold width, script, case and whitespace, so "寶 媽" and "宝妈" are one label."""
    return re.sub(r"\s+", "", fold(text))


@cache
def _segments() -> dict[str, str]:
    # Built on first use: folding loads OpenCC's tables, and importing does no I/O.
    return {label_key(alias): label_key(group[0]) for group in AUDIENCE_SYNONYMS for alias in group}


def segment_key(label: str) -> str:
    """Return the canonical key of an audience segment (folded, synonyms merged)."""
    folded = label_key(label)
    return _segments().get(folded, folded)
