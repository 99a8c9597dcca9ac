"""Lessons as reusable assets: each lesson, recommendation and tested hypothesis on its own.

Items are cut from the retros' Markdown (one per bullet or numbered line; a paragraph without
bullets is one item), plus every validated or refuted hypothesis. Each item gets themes from a
keyword table (``THEMES``) read on folded text (Traditional → Simplified, full-width → half-width,
lower case), and links back to its campaign and that campaign's outcome.

Search runs in memory over the items of live campaigns, with the keyword search's analyzer
(segmentation, synonyms: 企微 = 企业微信, 双11 = 双十一) and the main search's concepts
(search/concepts.py): a query word that names a concept (叠券) also matches an item that
describes it in the concept's cues or terms (多券叠加, 优惠叠加矩阵), and a query that describes a
situation adds the concept's terms, as the main search does. An item matches when it has every
query term, ranked by how rare the matched terms are; when no item has them all, items with most
of them (or with the concept's terms) are shown and the result says so. Every search loads the live campaigns and cuts their
items again (the analysis of each text is cached): about 20 ms over the 55 demo campaigns (256
items), growing with the number of campaigns. That is fine for a team's few hundred retros; past
a few thousand, the items want an index of their own.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Literal

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.orm import selectinload

from kb.campaigns import metrics as metric_catalog
from kb.campaigns.key_metric import KeyMetric, key_metric
from kb.extensions import db
from kb.models import Campaign
from kb.vocab import LESSON_KINDS
from search import concepts
from search.analysis import analyze, highlight
from search.normalize import normalize

ItemKind = Literal["lesson", "recommendation", "hypothesis"]
KIND_LABELS: dict[str, str] = LESSON_KINDS  # the one Chinese name of each kind (kb/vocab.py)

# Theme -> (Chinese name, keywords). Keywords are matched as substrings of the folded text, so
# they are written Simplified and lower case. An item may have several themes; its first (the
# one with most keyword hits, ties in table order) is where it is grouped.
THEMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "reward": (
        "奖励设计",
        ("券", "满减", "折扣", "红包", "积分", "点数", "叠加", "门槛", "立减", "返现", "赠品", "优惠",
         "权益", "奖励", "抽奖", "赔付", "返还", "早鸟", "低价", "阶梯", "诱饵", "reward", "coupon",
         "discount", "bonus", "cashback", "code"),
    ),
    "audience": (
        "人群",
        ("人群", "分层", "分众", "宝妈", "新客", "新人", "沉睡", "新用户", "老客", "会员", "画像", "圈选",
         "大学生", "学生", "银发", "适老", "高价值", "低频", "流失", "月龄", "audience", "segment",
         "cohort", "lapsed", "dormant"),
    ),
    "channel": (
        "渠道",
        ("渠道", "社群", "企微", "企业微信", "直播", "短视频", "短信", "推送", "推播", "kol", "koc",
         "达人", "公众号", "小程序", "信息流", "私域", "朋友圈", "触达", "投流", "投放", "广告",
         "种草", "开箱", "地推", "line", "email", "邮件", "push", "creator", "influencer"),
    ),
    "timing": (
        "时机与节奏",
        ("时间", "节奏", "提前", "窗口", "周期", "节点", "预热", "时段", "排期", "档期", "撞期",
         "分批", "到期前", "上线前", "开业前", "开学", "期末", "离校", "日历", "期限", "时效",
         "时限", "中旬", "timing", "schedul", "season", "weeks before", "peak"),
    ),
    "budget": (
        "预算与成本",
        ("预算", "成本", "roi", "投入", "毛利", "费用", "cac", "出价", "竞价", "薪酬", "budget",
         "cost", "spend"),
    ),
    "ops": (
        "技术与运营",
        ("系统", "技术", "加载", "页面", "库存", "配送", "客服", "履约", "发货", "物流", "服务器",
         "宕机", "卡顿", "监控", "看板", "接口", "bug", "供应链", "品控", "抽检", "运力", "验收",
         "压测", "sop", "交接", "结算", "上架", "物料", "审核", "助教", "教练", "stock",
         "warehouse", "onboarding", "payout", "landing page"),
    ),
    "risk": (
        "风控",
        ("羊毛党", "风控", "薅", "作弊", "黑产", "限购", "刷单", "刷量", "小号", "设备指纹",
         "黑名单", "熔断", "接码", "模拟器", "一人一码", "诈骗", "舆情", "尽调", "食品安全",
         "fraud", "stack"),
    ),
}  # fmt: skip
OTHER_THEME = "other"
# Below this many items that have every query word, a word naming a concept (search/concepts.py)
# also finds the items describing it, at this share of the score of one that says the word.
EXPAND_BELOW = 5
DESCRIBED_WEIGHT = 0.5
THEME_LABELS: dict[str, str] = {key: label for key, (label, _) in THEMES.items()}
THEME_LABELS[OTHER_THEME] = "其他"

_BULLET = re.compile(
    r"^\s*(?:[-*+•·]|\d{1,3}[.、)）]|[（(]\d{1,3}[)）]|[一二三四五六七八九十]{1,3}、)\s*"
)
_HEADING = re.compile(r"^\s*#{1,6}\s")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"\*\*|__|`")
MIN_ITEM_CHARS = 4


def split_items(markdown: str) -> list[str]:
    """Cut Markdown into items: one per bullet or numbered line, else one per paragraph.

    Lines under a bullet belong to it; headings are dropped; emphasis and link syntax are
    removed so the text reads (and highlights) as plain text.
    """
    items: list[list[str]] = []
    current: list[str] | None = None
    for raw in (markdown or "").splitlines():
        line = raw.strip()
        if not line or _HEADING.match(raw):
            current = None
            continue
        bullet = _BULLET.match(line)
        if bullet or current is None:
            current = [line[bullet.end() :] if bullet else line]
            items.append(current)
        else:
            current.append(line)
    texts = (_plain(" ".join(parts)) for parts in items)
    return [text for text in texts if len(text) >= MIN_ITEM_CHARS]


def _plain(text: str) -> str:
    return _EMPHASIS.sub("", _LINK.sub(r"\1", text)).strip()


def _theme_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    # English keywords match at a word start ("coupon" in "coupons", not "line" in "online").
    parts = [
        rf"(?<![a-z0-9]){re.escape(w)}" if w.isascii() else re.escape(w)
        for w in sorted(words, key=len, reverse=True)
    ]
    return re.compile("|".join(parts))


_THEME_PATTERNS = {theme: _theme_pattern(words) for theme, (_, words) in THEMES.items()}


def classify(text: str) -> tuple[str, ...]:
    """Return the themes of a text, the main one first; ``("other",)`` when none applies."""
    folded = normalize(text)[0]
    hits = {theme: len(pattern.findall(folded)) for theme, pattern in _THEME_PATTERNS.items()}
    order = list(THEMES)
    found = sorted((t for t, n in hits.items() if n), key=lambda t: (-hits[t], order.index(t)))
    return tuple(found) or (OTHER_THEME,)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the item's campaign achieved: its key metric and how many targets it hit."""

    key_metric: KeyMetric | None
    hit: int
    judged: int


@dataclass(frozen=True, slots=True)
class LessonItem:
    """One lesson, recommendation or tested hypothesis, with its campaign."""

    campaign_id: int
    campaign_title: str
    industry: str
    goal_type: str
    status: str
    start_date: date
    kind: ItemKind
    text: str
    themes: tuple[str, ...]
    outcome: Outcome
    result: str | None = None  # hypotheses: validated / refuted
    evidence: str = ""

    @property
    def theme(self) -> str:
        """Return the main theme (where the item is grouped)."""
        return self.themes[0]

    @property
    def search_text(self) -> str:
        """Return the text searched: the item and, for a hypothesis, its evidence."""
        return f"{self.text}\n{self.evidence}" if self.evidence else self.text


def campaign_items(campaign: Campaign) -> list[LessonItem]:
    """Return a campaign's lessons, recommendations and validated or refuted hypotheses."""
    # A campaign still running has missed nothing yet: its metrics are not counted as judged.
    finished = campaign.status == "completed"
    judged = [
        m for m in campaign.metrics if finished and m.target is not None and m.actual is not None
    ]
    outcome = Outcome(
        key_metric=key_metric(campaign),
        hit=sum(1 for m in judged if _hit(m.catalog_key, m.target, m.actual)),
        judged=len(judged),
    )
    head: dict[str, Any] = {
        "campaign_id": campaign.id,
        "campaign_title": campaign.title,
        "industry": campaign.industry,
        "goal_type": campaign.goal_type,
        "status": campaign.status,
        "start_date": campaign.start_date,
        "outcome": outcome,
    }
    sections: tuple[tuple[ItemKind, str], ...] = (
        ("lesson", campaign.lessons),
        ("recommendation", campaign.recommendations),
    )
    items = [
        LessonItem(**head, kind=kind, text=text, themes=classify(text))
        for kind, markdown in sections
        for text in split_items(markdown)
    ]
    for hypothesis in campaign.hypotheses:
        if hypothesis.result not in ("validated", "refuted"):
            continue  # an open question is not yet a lesson
        text = _plain(hypothesis.statement)
        items.append(
            LessonItem(
                **head,
                kind="hypothesis",
                text=text,
                themes=classify(f"{text} {hypothesis.evidence}"),
                result=hypothesis.result,
                evidence=_plain(hypothesis.evidence),
            )
        )
    return items


def _hit(key: str | None, target: float | None, actual: float | None) -> bool:
    entry = metric_catalog.by_key(key) if key else None
    direction: metric_catalog.Direction = entry.direction if entry else "higher"
    return bool(metric_catalog.assess(direction, None, target, actual).hit)


@dataclass(frozen=True, slots=True)
class LessonHit:
    """A found item: the item, its highlighted text and the query terms it has."""

    item: LessonItem
    text_html: Markup
    evidence_html: Markup
    matched: tuple[str, ...]
    score: float


@dataclass(frozen=True, slots=True)
class LessonResults:
    """One page of found items, how many there are, and the count per theme."""

    hits: list[LessonHit]
    total: int
    theme_counts: dict[str, int]
    # True when no item had every query term and the best partial matches are shown.
    partial: bool = False
    # Items of the whole result by main theme (the page groups by it; headers count the whole).
    group_counts: dict[str, int] = field(default_factory=dict)


def all_items() -> list[LessonItem]:
    """Return the items of every live campaign, newest campaign first."""
    campaigns = db.session.scalars(
        sa.select(Campaign)
        .where(Campaign.deleted_at.is_(None))
        .options(selectinload(Campaign.metrics), selectinload(Campaign.hypotheses))
        .order_by(Campaign.start_date.desc(), Campaign.id.desc())
    ).all()
    return [item for campaign in campaigns for item in campaign_items(campaign)]


def search_lessons(
    q: str = "",
    *,
    theme: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
    items: Iterable[LessonItem] | None = None,
) -> LessonResults:
    """Find items by words (all of them, else as many as possible), theme and kind."""
    pool = [i for i in (all_items() if items is None else items) if not kind or i.kind == kind]
    terms = tuple(dict.fromkeys(analyze(q, mode="query"))) if q.strip() else ()
    partial = False
    scored: list[tuple[LessonItem, tuple[str, ...], float]]
    if terms:
        plan = _QueryPlan.of(q, terms)
        weights = _idf(terms, pool)
        found = [(item, plan.literal(item.search_text)) for item in pool]
        complete = [(i, m) for i, m in found if len(m) == len(terms)]
        if len(complete) < EXPAND_BELOW:
            # Few items say it in so many words: a word naming a concept (叠券) also finds the
            # items that describe it (多券叠加), ranked after those that say it.
            described = [(i, plan.matched(i.search_text)) for i in pool]
            literal = {id(i) for i, _ in complete}
            complete += [
                (i, m) for i, m in described if len(m) == len(terms) and id(i) not in literal
            ]
            found = described
        if not complete and plan.added:
            # As the main search: the concept a situation names, in the retros' own words.
            complete = [(i, ()) for i in pool if plan.has_added(i.search_text)]
            partial = bool(complete)
        if not complete and len(terms) > 1:
            partial = True
            best = max((len(m) for _, m in found), default=0)
            complete = [(i, m) for i, m in found if best and len(m) == best]
        said = {id(i) for i, m in found if m and set(m) <= _terms(i.search_text)}
        scored = [
            (i, m, sum(weights[t] for t in m) * (1.0 if id(i) in said else DESCRIBED_WEIGHT))
            for i, m in complete
        ]
        scored.sort(key=lambda s: (-s[2], -s[0].start_date.toordinal(), s[0].campaign_id))
    elif q.strip():
        scored = []  # only stop words or punctuation: nothing to look for
    else:
        scored = [(i, (), 0.0) for i in pool]
    theme_counts = Counter(theme_key for i, _, _ in scored for theme_key in i.themes)
    if theme:
        scored = [s for s in scored if theme in s[0].themes]
        group_counts = {theme: len(scored)}
    else:
        group_counts = dict(Counter(i.theme for i, _, _ in scored))
    page = scored[offset : offset + limit]
    return LessonResults(
        hits=[_hit_of(item, matched, score) for item, matched, score in page],
        total=len(scored),
        theme_counts={key: theme_counts.get(key, 0) for key in THEME_LABELS},
        partial=partial,
        group_counts=group_counts,
    )


@dataclass(frozen=True, slots=True)
class _QueryPlan:
    """What a lesson query looks for: its terms, each with the concepts it names, and the
    concept terms the main search would add to it (``concepts.expand``)."""

    terms: tuple[str, ...]
    # Per query term, the concepts whose terms include it (叠券 → the stacking concept).
    named: dict[str, tuple[concepts.Concept, ...]]
    added: tuple[str, ...]

    @classmethod
    def of(cls, q: str, terms: tuple[str, ...]) -> _QueryPlan:
        known = concepts.current()
        named = {
            term: tuple(c for c in known if any(_folded(t) == term for t in c.terms))
            for term in terms
        }
        return cls(terms, named, concepts.expand(q))

    def literal(self, text: str) -> tuple[str, ...]:
        """Return the query terms the text has itself (synonyms included)."""
        have = _terms(text)
        return tuple(t for t in self.terms if t in have)

    def matched(self, text: str) -> tuple[str, ...]:
        """Return the query terms the text has, itself or (for a concept's name) in other words."""
        have = _terms(text)
        return tuple(t for t in self.terms if t in have or self._describes(t, text, have))

    def _describes(self, term: str, text: str, have: frozenset[str]) -> bool:
        for concept in self.named.get(term, ()):
            if concept.cues.search(_folded(text)):
                return True
            for other in concept.terms:
                parts = _query_terms(other)
                if other != term and parts and parts <= have:
                    return True
        return False

    def has_added(self, text: str) -> bool:
        """Return whether the text has one of the added concept terms (all its words)."""
        have = _terms(text)
        return any((parts := _query_terms(t)) and parts <= have for t in self.added)


@lru_cache(maxsize=50_000)
def _folded(text: str) -> str:
    return normalize(text)[0].lower()


@lru_cache(maxsize=4096)
def _query_terms(text: str) -> frozenset[str]:
    return frozenset(analyze(text, mode="query"))


def _hit_of(item: LessonItem, matched: tuple[str, ...], score: float) -> LessonHit:
    if matched:
        text = Markup(highlight(item.text, matched, max_len=len(item.text) + 1))  # noqa: S704  # escaped by highlight
        evidence = (
            Markup(highlight(item.evidence, matched, max_len=len(item.evidence) + 1))  # noqa: S704  # escaped by highlight
            if item.evidence
            else Markup("")
        )
    else:
        text, evidence = escape(item.text), escape(item.evidence)
    return LessonHit(
        item=item, text_html=text, evidence_html=evidence, matched=matched, score=round(score, 3)
    )


def lesson_terms(text: str, *, query: bool = False) -> frozenset[str]:
    """Return the analyzed terms of a text as indexed, or (``query``) as a query reads it."""
    return frozenset(analyze(text, mode="query")) if query else _terms(text)


@lru_cache(maxsize=50_000)
def _terms(text: str) -> frozenset[str]:
    """Return the index terms of a text (sub-words and synonym groups included)."""
    return frozenset(analyze(text))


def _idf(terms: tuple[str, ...], pool: list[LessonItem]) -> dict[str, float]:
    n = len(pool) or 1
    df = {t: sum(1 for item in pool if t in _terms(item.search_text)) for t in terms}
    return {t: math.log(1 + n / (1 + df[t])) for t in terms}


def group_by_theme(hits: Iterable[LessonHit]) -> list[tuple[str, list[LessonHit]]]:
    """Group hits by their main theme, in the table's order (其他 last)."""
    groups: dict[str, list[LessonHit]] = {key: [] for key in THEME_LABELS}
    for hit in hits:
        groups[hit.item.theme].append(hit)
    return [(key, group) for key, group in groups.items() if group]
