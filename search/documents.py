"""What the indexes see of a campaign: filterable facts, weighted text fields and passages.

The search package does not know the database: the app turns each stored campaign into a
``CampaignText`` and hands it over. Everything here is plain data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

# Retros are long; e5 reads at most 512 tokens (≈ 700 Chinese characters). Passages stay well
# under that so nothing is cut off, and short enough that one passage is about one thing.
PASSAGE_CHARS = 360
# Embedding is the slow part of indexing (e5 on a CPU without AVX-512: ≈ 10 passages/s). A
# schema-valid campaign can hold megabytes of text, which once kept every later write out of the
# index for minutes. Vectors cover the start of each section (16 × 360 ≈ 5,800 characters, where
# retros put what matters) and at most 96 passages a campaign; keyword search sees all the text.
MAX_SECTION_PASSAGES = 16
MAX_PASSAGES = 96
_PARAGRAPH = re.compile(r"\n\s*\n|\n(?=#)|\n(?=[-*] )|\n(?=\d+[.、] )")
_SENTENCE = re.compile(r"(?<=[。！？!?；;])")


@dataclass(frozen=True, slots=True)
class MetricFact:
    """A metric as search sees it: its catalog key and how it turned out."""

    name: str
    key: str | None
    direction: str | None
    baseline: float | None
    target: float | None
    actual: float | None
    attainment_pct: float | None
    lift_pct: float | None
    hit: bool | None
    # The campaign's key metric (主要指标), as the app chose it; "key" in metric ranges reads it.
    is_key: bool = False
    # The factor from the metric's unit to its base unit (1e4 for 万元: target and actual in 元),
    # read by the app; None when no base fits the unit (美元, 次/万人): the keyword index then
    # keeps no actual or target number for it (see search/keyword/fields.py).
    base_scale: float | None = 1.0


@dataclass(frozen=True, slots=True)
class CampaignText:
    """One campaign, flattened for indexing."""

    id: int
    version: int
    title: str
    industry: str
    department: str
    business_line: str | None
    goal_type: str
    status: str
    start_date: date
    end_date: date
    budget_cny: float | None
    audience: tuple[str, ...]
    products: tuple[str, ...]
    channels: tuple[str, ...]
    reward_types: tuple[str, ...]
    tags: tuple[str, ...]
    goal: str = ""
    rewards_text: str = ""
    summary: str = ""
    went_well: str = ""
    problems: str = ""
    lessons: str = ""
    recommendations: str = ""
    hypotheses: str = ""
    documents: tuple[tuple[str, str], ...] = ()  # (title, Markdown body)
    metrics: tuple[MetricFact, ...] = field(default=())

    def elements_text(self) -> str:
        """Return the five elements and channels as one line of text."""
        parts = [
            self.industry,
            self.department,
            self.business_line or "",
            " ".join(self.audience),
            " ".join(self.products),
            " ".join(self.channels),
            self.rewards_text,
            " ".join(self.tags),
        ]
        return " ".join(p for p in parts if p)

    def metrics_text(self) -> str:
        """Return the metric names, so "复购率" finds campaigns that measured it."""
        return " ".join(m.name for m in self.metrics)

    def body_text(self) -> str:
        """Return the long text: retro sections and documents."""
        docs = "\n".join(f"{title}\n{body}" for title, body in self.documents)
        sections = (
            self.summary, self.went_well, self.problems, self.recommendations,
            self.hypotheses, docs,
        )  # fmt: skip
        return "\n".join(s for s in sections if s)


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of a campaign small enough to embed whole.

    ``content`` is the passage without the campaign title that ``text`` starts with: what
    identifies it in the embedding cache, so renaming a campaign does not re-embed every passage.
    """

    campaign_id: int
    section: str
    text: str
    content: str = ""

    @property
    def cache_key(self) -> str:
        """Return the text whose hash names this passage's stored vector."""
        return f"{self.section}\n{self.content or self.text}"


def passages(campaign: CampaignText) -> list[Passage]:
    """Split a campaign into passages: a head (title, goal, elements), then each section."""
    head = "\n".join(p for p in (campaign.title, campaign.goal, campaign.elements_text()) if p)
    found = [Passage(campaign.id, "head", head[: PASSAGE_CHARS * 2])]
    sections = [
        ("summary", campaign.summary),
        ("went_well", campaign.went_well),
        ("problems", campaign.problems),
        ("lessons", campaign.lessons),
        ("recommendations", campaign.recommendations),
        ("hypotheses", campaign.hypotheses),
        *((f"document:{title}", f"{title}\n{body}") for title, body in campaign.documents),
    ]
    for section, text in sections:
        for chunk in chunk_text(text)[:MAX_SECTION_PASSAGES]:
            # The title travels with every passage: a lesson alone often does not say what
            # campaign it is about, and the title does.
            found.append(Passage(campaign.id, section, f"{campaign.title}：{chunk}", chunk))
    return found[:MAX_PASSAGES]


def chunk_text(text: str, limit: int = PASSAGE_CHARS) -> list[str]:
    """Split text into chunks of at most ``limit`` characters at paragraph or sentence ends."""
    text = text.strip()
    if not text:
        return []
    pieces: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if len(paragraph) <= limit:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE.split(paragraph):
            while len(sentence) > limit:  # a sentence with no end in sight
                pieces.append(sentence[:limit])
                sentence = sentence[limit:]
            pieces.append(sentence)
    chunks: list[str] = []
    current = ""
    for piece in filter(None, (p.strip() for p in pieces)):
        if current and len(current) + 1 + len(piece) > limit:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks
