"""What another editor changed while this one was editing: shown when a save loses the race."""

from __future__ import annotations

from dataclasses import dataclass

from kb.campaigns import history
from kb.campaigns.serialize import campaign_to_input
from kb.models import Campaign


@dataclass(frozen=True, slots=True)
class EditConflict:
    """A save refused because the campaign moved on: from which version, to which, and how."""

    started_from: int
    current: int
    changes: list[history.FieldChange]
    # Who saved the newest version, as history records it ("user:王芳"); "" when unknown.
    actor: str


def edit_conflict(campaign: Campaign, started_from: int | None) -> EditConflict:
    """Return what changed between the version the editor opened and the campaign now.

    Without that version in the history (too old, or none sent), every field of the campaign
    now is listed, so nothing the other editor wrote is overwritten unseen.
    """
    before = None
    if started_from is not None:
        kept = history.get_version(campaign.id, started_from)
        before = history.snapshot_of(kept) if kept is not None else None
    newest = history.get_version(campaign.id, campaign.version)
    return EditConflict(
        started_from=started_from or 0,
        current=campaign.version,
        changes=history.diff(before, campaign_to_input(campaign)),
        actor=newest.actor if newest is not None else "",
    )
