"""Why a search result is there, in the user's words: highlighted title, snippet and reasons.

Presentation of a result that the search service has already chosen and ranked: the matched
words as the campaign's text writes them, how strongly the meaning matched, and which numbers an
outcome query asked about.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from markupsafe import Markup, escape

from kb.campaigns import metrics as metric_catalog
from kb.models import Campaign
from search import relevance
from search.analysis import highlight, marked_spans
from search.hybrid import FusedHit
from search.outcomes import OutcomeIntent

SNIPPET_FIELDS = ("lessons", "summary", "went_well", "problems", "recommendations", "goal")
STRENGTH_REASONS = {"high": "语义高度相关", "medium": "语义相关", "low": "语义弱相关"}
# Reasons name at most this many matched words.
MAX_REASON_TERMS = 6

# Retros are Markdown; a snippet is one line of their text, without the marks: "- " before each
# point, "**" around a phrase, "## " before a heading showed as such in results. Regular
# expressions, not the Markdown renderer the pages use: a search reads up to six fields for each
# of its results and the renderer costs about a millisecond a field.
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKDOWN_LINE_START = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d{1,3}[.)][ \t]+)+", re.M
)
_MARKDOWN_TABLE_RULE = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$", re.M
)
_MARKDOWN_EMPHASIS = re.compile(r"\*\*|__|`+|~~")


def highlighted_title(campaign: Campaign, terms: set[str]) -> Markup:
    """Return the title with the matched words marked (escaped, unmarked when none match)."""
    if terms:
        html = highlight(campaign.title, terms, max_len=len(campaign.title) + 1)
        if "<mark>" in html:
            return Markup(html)  # noqa: S704  # built from escaped text by search.analysis
    return escape(campaign.title)


def snippet(campaign: Campaign, terms: set[str]) -> Markup:
    """Return the first field (or document) with a match, around it; else the summary."""
    if terms:
        for text in snippet_texts(campaign):
            html = highlight(text, terms) if text else ""
            if "<mark>" in html:
                return Markup(html)  # noqa: S704  # built from escaped text by search.analysis
    return plain_snippet(campaign)


def plain_text(markdown: str) -> str:
    """Return Markdown as one line of its text: no list, heading, quote, emphasis or link marks."""
    text = _MARKDOWN_LINK.sub(r"\1", markdown)
    text = _MARKDOWN_TABLE_RULE.sub("", text)
    text = _MARKDOWN_LINE_START.sub("", text)
    text = _MARKDOWN_EMPHASIS.sub("", text).replace("|", " ")
    return " ".join(text.split())


def surfaces(campaign: Campaign, terms: tuple[str, ...]) -> list[str]:
    """Return the matched terms as the campaign's text writes them ("abuse", not "abus").

    A term found only in an attached document, or not at all, is named only when it reads as
    a word already (not a Latin stem).
    """
    wanted = dict.fromkeys(terms)
    found: dict[str, str] = {}
    for text in (campaign.title, *(getattr(campaign, name) for name in SNIPPET_FIELDS)):
        if not text or len(found) == len(wanted):
            continue
        remaining = frozenset(t for t in wanted if t not in found)
        for surface, terms_there in marked_spans(text, remaining):
            for term in terms_there:
                found.setdefault(term, surface.strip())
    words = [found.get(t) or (t if not t.isascii() else "") for t in wanted]
    return [w for w in dict.fromkeys(words) if w][:MAX_REASON_TERMS]


def snippet_texts(campaign: Campaign) -> Iterator[str]:
    """Yield the texts a snippet may come from, in order of preference, as plain text."""
    for name in SNIPPET_FIELDS:
        text = getattr(campaign, name)
        yield plain_text(text) if text else ""
    # Loaded only if reached.
    yield from (plain_text(document.body or "") for document in campaign.documents)


def plain_snippet(campaign: Campaign, max_len: int = 160) -> Markup:
    """Return the start of the summary (or goal, or lessons) when no word is marked."""
    text = plain_text(campaign.summary or campaign.goal or campaign.lessons or "")
    return escape(text[:max_len] + ("…" if len(text) > max_len else ""))


def reasons(
    hit: FusedHit,
    matched: tuple[str, ...],
    strength: relevance.Strength | None,
    intent: OutcomeIntent | None,
    campaign: Campaign,
) -> list[str]:
    """Say why a result is there: matched words, strength of meaning, the numbers asked for."""
    reasons = []
    words = surfaces(campaign, matched) if matched else []
    if words:
        reasons.append("关键词命中：" + "、".join(words))
    if strength is not None:
        reasons.append(STRENGTH_REASONS[strength])
    elif "semantic" in hit.contributions:
        reasons.append("语义相近")  # the floor is off: no calibrated strength to name
    if intent is not None and hit.contributions.get("outcome", 0) > 0:
        reasons.append(outcome_reason(intent, campaign))
    return reasons


CONDITION_WORDS = {
    "missed_target": "未达成目标",
    "hit_target": "达成目标",
    "improved": "较基线改善",
    "worsened": "较基线变差",
}


def describe_outcome(intent: OutcomeIntent) -> str:
    """Say in words which numbers a query asked about: "roi 未达成目标"."""
    names = []
    for key in intent.metric_keys:
        entry = metric_catalog.by_key(key)
        names.append(entry.label if entry else key)
    label = "、".join(names) or "关键指标"
    return f"{label}{CONDITION_WORDS.get(intent.condition, intent.condition)}"


def outcome_reason(intent: OutcomeIntent, campaign: Campaign) -> str:
    """Name the campaign's metrics an outcome query matched and how they turned out."""
    keys = set(intent.metric_keys)
    names = [m.name for m in campaign.metrics if not keys or m.catalog_key in keys]
    label = "、".join(names[:3]) or "关键指标"
    return f"数据：{label}{CONDITION_WORDS.get(intent.condition, intent.condition)}"
