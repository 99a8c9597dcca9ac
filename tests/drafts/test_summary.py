"""The summary band's pure parts: forecast headlines and playbook excerpts."""

from __future__ import annotations

from dataclasses import dataclass

from kb.drafts.summary import excerpt, forecast_headline


@dataclass(frozen=True)
class Reading:
    """A forecast as the band reads it: only a name, a summary and whether it is enough."""

    name: str
    summary: str
    enough: bool = True


@dataclass(frozen=True)
class Headed(Reading):
    headline: str = ""


def test_a_headline_is_the_first_clauses_without_parentheses() -> None:
    summary = (
        "转化率：样本不足：只有 4 个相似活动测量过该指标，不给区间（召回第0期：达成目标的 80%；"
        "召回第2期：达成目标的 83%）；4 个相似活动中有 2 个达成了目标；达成目标的概率约 58%"
        "（n=4；已向历史达成率 58% 收缩）。"
    )
    line = forecast_headline(Reading("转化率", summary, enough=False))
    assert line.name == "转化率"
    assert line.enough is False
    # The case list and the caveat stay in the details; the clauses that fit are kept.
    assert line.headline == (
        "样本不足：只有 4 个相似活动测量过该指标，不给区间；4 个相似活动中有 2 个达成了目标；"
        "达成目标的概率约 58%"
    )
    short = forecast_headline(Reading("GMV", "甲" * 50 + "；" + "乙" * 30 + "；丙"))
    assert short.headline == "甲" * 50  # a clause that would pass 70 characters is left out


def test_a_forecast_that_has_a_headline_is_quoted_as_is() -> None:
    line = forecast_headline(Headed("GMV", "很长的说明；第二句", headline="预计 806–1,139 万元"))
    assert line.headline == "预计 806–1,139 万元"
    assert forecast_headline(Headed("GMV", "一句话。", headline="")).headline == "一句话"


def test_excerpt_reads_like_the_page() -> None:
    assert excerpt("## 做法\n- 任一 SKU **叠满**后") == "做法 任一 SKU 叠满后"
    long = "字" * 200
    assert excerpt(long) == "字" * 119 + "…"
    assert excerpt("字" * 125) == "字" * 125  # Jinja's truncate leaves five characters of slack
