"""Playbooks: an editor's curated lessons, citing the campaigns for and against them.

Every write goes through here in one transaction (validate, check the cited campaigns, persist).
A playbook appears on drafts that match it (``matching_playbooks``): by its theme's keywords in
the draft, or by a supporting campaign with the draft's goal type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from kb import audit, errors
from kb.campaigns.key_metric import key_metric
from kb.database import write_transaction
from kb.extensions import db
from kb.insights.lessons import OTHER_THEME, classify, lesson_terms
from kb.insights.schemas import PlaybookIn
from kb.models import Campaign, Playbook, PlaybookCitation, utcnow
from kb.validation import InvalidInputError

SUPPORTS = "supports"
CONTRADICTS = "contradicts"


class PlaybookNotFoundError(errors.NotFoundError):
    """The playbook does not exist."""

    message = "找不到该打法"


class PlaybookConflictError(errors.ConflictError):
    """The playbook changed since the editor read it."""


def get_playbook(playbook_id: int) -> Playbook:
    """Return the playbook with this id; raise PlaybookNotFoundError."""
    playbook = db.session.get(Playbook, playbook_id)
    if playbook is None:
        raise PlaybookNotFoundError(playbook_id)
    return playbook


def list_playbooks(theme: str | None = None) -> list[Playbook]:
    """Return every playbook (of one theme), most recently updated first."""
    query = sa.select(Playbook).options(selectinload(Playbook.citations))
    if theme:
        query = query.where(Playbook.theme == theme)
    return list(db.session.scalars(query.order_by(Playbook.updated_at.desc(), Playbook.id.desc())))


def create_playbook(data: PlaybookIn) -> Playbook:
    """Store a new playbook; raise InvalidInputError when a cited campaign does not exist."""
    with write_transaction() as session:
        _check_citations(data, set())
        playbook = Playbook()
        _apply(playbook, data)
        playbook.created_at = playbook.updated_at
        session.add(playbook)
        session.flush()
        audit.record("playbook.create", f"playbook:{playbook.id} {playbook.title}")
    return playbook


def update_playbook(
    playbook_id: int, data: PlaybookIn, *, expected_version: int | None = None
) -> Playbook:
    """Replace a playbook; raise PlaybookConflictError if it moved past ``expected_version``."""
    with write_transaction() as session:
        playbook = get_playbook(playbook_id)
        if expected_version is not None and expected_version != playbook.version:
            raise PlaybookConflictError(playbook.version)
        _check_citations(data, {c.campaign_id for c in playbook.citations})
        # Old citations go first: the new list may cite the same campaigns (a unique pair).
        playbook.citations.clear()
        session.flush()
        _apply(playbook, data)
        try:
            session.flush()
        except StaleDataError:
            raise PlaybookConflictError(playbook.version) from None
        audit.record(
            "playbook.update",
            f"playbook:{playbook.id} {playbook.title}",
            f"第 {playbook.version} 版",
        )
    return playbook


def delete_playbook(playbook_id: int) -> None:
    """Delete a playbook (its citations go with it)."""
    with write_transaction() as session:
        playbook = get_playbook(playbook_id)
        audit.record("playbook.delete", f"playbook:{playbook.id} {playbook.title}")
        session.delete(playbook)


def _check_citations(data: PlaybookIn, cited_before: set[int]) -> None:
    """Refuse citing a campaign that does not exist or is in the trash.

    A campaign the playbook already cites may be in the trash meanwhile: saving keeps citing it
    (hidden while trashed, back when restored) rather than refusing the editor's save.
    """
    wanted = {*data.supporting_ids, *data.contradicting_ids}
    rows = db.session.execute(
        sa.select(Campaign.id, Campaign.deleted_at).where(Campaign.id.in_(wanted))
    ).all()
    live = {cid for cid, deleted_at in rows if deleted_at is None or cid in cited_before}
    errors: dict[str, str] = {}
    for name, ids in (
        ("supporting_ids", data.supporting_ids),
        ("contradicting_ids", data.contradicting_ids),
    ):
        for position, campaign_id in enumerate(ids):
            if campaign_id not in live:
                errors.setdefault(f"{name}.{position}", f"找不到活动 #{campaign_id}")
    if errors:
        raise InvalidInputError(errors)


def _apply(playbook: Playbook, data: PlaybookIn) -> None:
    playbook.title = data.title
    playbook.body = data.body
    playbook.theme = data.theme
    # Touch the row itself so its version moves even when only the citations changed.
    playbook.updated_at = utcnow()
    cited = [(i, SUPPORTS) for i in data.supporting_ids]
    cited += [(i, CONTRADICTS) for i in data.contradicting_ids]
    playbook.citations = [
        PlaybookCitation(campaign_id=campaign_id, stance=stance, position=position)
        for position, (campaign_id, stance) in enumerate(cited)
    ]


@dataclass(frozen=True, slots=True)
class CitedCampaign:
    """A live campaign a playbook cites, with its outcome."""

    campaign: Campaign
    stance: str
    key_metric_name: str | None
    attainment_pct: float | None
    hit: bool | None


def cited_campaigns(
    playbook: Playbook, campaigns: dict[int, Campaign] | None = None
) -> list[CitedCampaign]:
    """Return the playbook's live cited campaigns in the editor's order (trashed ones hidden).

    ``campaigns``: the live campaigns already loaded by id (the index loads all at once).
    """
    if campaigns is None:
        campaigns = _live_campaigns([c.campaign_id for c in playbook.citations])
    result = []
    for citation in playbook.citations:
        campaign = campaigns.get(citation.campaign_id)
        if campaign is None:
            continue
        key = key_metric(campaign)
        result.append(
            CitedCampaign(
                campaign=campaign,
                stance=citation.stance,
                key_metric_name=key.name if key else None,
                attainment_pct=None
                if key is None or key.attainment_pct is None
                else round(key.attainment_pct, 1),
                hit=key.hit if key else None,
            )
        )
    return result


def _live_campaigns(ids: list[int]) -> dict[int, Campaign]:
    if not ids:
        return {}
    return {
        c.id: c
        for c in db.session.scalars(
            sa.select(Campaign)
            .where(Campaign.id.in_(ids), Campaign.deleted_at.is_(None))
            .options(selectinload(Campaign.metrics))
        )
    }


def playbook_index(theme: str | None = None) -> list[tuple[Playbook, list[CitedCampaign]]]:
    """Return every playbook (of one theme) with its cited campaigns, in three queries."""
    playbooks = list_playbooks(theme)
    campaigns = _live_campaigns(sorted({c.campaign_id for p in playbooks for c in p.citations}))
    return [(p, cited_campaigns(p, campaigns)) for p in playbooks]


@dataclass(frozen=True, slots=True)
class CampaignChoice:
    """A campaign as the citation picker offers it."""

    id: int
    title: str
    start_date: date

    @property
    def label(self) -> str:
        """Return what the picker shows and takes back: "夜宵节（2024年7月） #12"."""
        return f"{self.title}（{self.start_date.year}年{self.start_date.month}月） #{self.id}"


CHOICES_LIMIT = 20


def campaign_choices(q: str = "", *, limit: int = CHOICES_LIMIT) -> list[CampaignChoice]:
    """Return live campaigns whose title contains ``q`` (all words), newest first, at most ``limit``."""
    query = sa.select(Campaign.id, Campaign.title, Campaign.start_date).where(
        Campaign.deleted_at.is_(None)
    )
    for word in q.split()[:5]:
        if word.lstrip("#").isdigit():
            query = query.where(
                sa.or_(Campaign.id == int(word.lstrip("#")), Campaign.title.contains(word))
            )
        else:
            query = query.where(Campaign.title.ilike(f"%{_like_escaped(word)}%", escape="\\"))
    query = query.order_by(Campaign.start_date.desc(), Campaign.id.desc()).limit(limit)
    return [CampaignChoice(i, t, d) for i, t, d in db.session.execute(query)]


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def chosen_campaigns(ids: list[int]) -> list[CampaignChoice]:
    """Return the campaigns of these ids (live ones), in the given order, for the form."""
    if not ids:
        return []
    rows = db.session.execute(
        sa.select(Campaign.id, Campaign.title, Campaign.start_date).where(
            Campaign.id.in_(ids), Campaign.deleted_at.is_(None)
        )
    )
    found = {i: CampaignChoice(i, t, d) for i, t, d in rows}
    return [found[i] for i in dict.fromkeys(ids) if i in found]


def matching_playbooks(draft_text: str, goal_type: str | None, *, limit: int = 5) -> list[Playbook]:
    """Return the playbooks that apply to a draft, best first.

    A playbook applies when its theme's keywords occur in the draft (kb.insights.lessons.THEMES) or when a
    campaign supporting it has the draft's goal type. Both beat one; then more words of the
    playbook's title found in the draft; then the most recently updated.
    """
    themes = set(classify(draft_text)) - {OTHER_THEME} if draft_text.strip() else set()
    draft_terms = lesson_terms(draft_text) if draft_text.strip() else frozenset()
    playbooks = list_playbooks()
    goals = _supporting_goal_types([p.id for p in playbooks]) if goal_type else {}
    ranked = []
    for position, playbook in enumerate(playbooks):
        by_theme = playbook.theme in themes
        by_goal = goal_type is not None and goal_type in goals.get(playbook.id, set())
        if not (by_theme or by_goal):
            continue
        title_terms = lesson_terms(playbook.title)
        shared = len(title_terms & draft_terms) / len(title_terms) if title_terms else 0.0
        ranked.append((-(int(by_theme) + int(by_goal)), -shared, position, playbook))
    ranked.sort(key=lambda r: r[:3])
    return [r[3] for r in ranked[:limit]]


def _supporting_goal_types(playbook_ids: list[int]) -> dict[int, set[str]]:
    rows = db.session.execute(
        sa.select(PlaybookCitation.playbook_id, Campaign.goal_type)
        .join(Campaign, Campaign.id == PlaybookCitation.campaign_id)
        .where(
            PlaybookCitation.playbook_id.in_(playbook_ids),
            PlaybookCitation.stance == SUPPORTS,
            Campaign.deleted_at.is_(None),
        )
    )
    goals: dict[int, set[str]] = {}
    for playbook_id, goal in rows:
        goals.setdefault(playbook_id, set()).add(goal)
    return goals


def search_playbooks(q: str = "", theme: str | None = None) -> list[Playbook]:
    """Return the playbooks of a theme that share a word with ``q`` (all of them for no words)."""
    playbooks = list_playbooks(theme)
    if not q.strip():
        return playbooks
    wanted = lesson_terms(q, query=True)
    return [p for p in playbooks if wanted & lesson_terms(f"{p.title}\n{p.body}")]


def playbook_input(playbook: Playbook) -> dict[str, Any]:
    """Return the playbook as the fields an editor writes (the form's and API's input shape)."""
    return {
        "title": playbook.title,
        "body": playbook.body,
        "theme": playbook.theme,
        "supporting_ids": [c.campaign_id for c in playbook.citations if c.stance == SUPPORTS],
        "contradicting_ids": [c.campaign_id for c in playbook.citations if c.stance == CONTRADICTS],
    }
