"""Campaign history: every change keeps the record as it was, with who, when and what changed.

Each write stores the campaign after it (the API's input shape) as a CampaignVersion in the same
transaction. A campaign written before history existed gets its then-current state recorded as a
"baseline" version the first time it changes, so that change too can be seen and undone.

Storage is compact (plain JSON escaped each Chinese character to six bytes: a 1 MB record cost 4-6 MB
per save): the newest version holds the whole record as zlib-compressed UTF-8 JSON, each older one
only the fields that differ from the version after it (a reverse delta, so the current version
never depends on anything and the oldest can be dropped). A campaign keeps its newest MAX_VERSIONS.
"""

from __future__ import annotations

import difflib
import json
import zlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field

from kb import access, audit
from kb import vocab as labels
from kb.campaigns.serialize import Out, Timestamp, campaign_to_input
from kb.extensions import db
from kb.models import Campaign, CampaignVersion
from kb.web import rendering

ACTION_LABELS = {
    "baseline": "启用历史前的版本",
    "create": "新建",
    "update": "修改",
    "import": "导入",
    "trash": "移入回收站",
    "restore": "从回收站恢复",
    "revert": "恢复历史版本",
}

# The fields a version compares, by their one Chinese name (the form's, the importer's: kb/vocab.py).
FIELD_LABELS = {name: labels.FIELD_LABELS[name] for name in labels.CAMPAIGN_FIELDS}
TEXT_FIELDS = ("goal", "summary", "went_well", "problems", "lessons", "recommendations")
# Versions kept per campaign (each is a full compressed snapshot, up to RECORD_MAX_CHARS of text).
MAX_VERSIONS = 50


def pack(value: dict[str, Any]) -> bytes:
    """Return a snapshot (or a delta) as compressed UTF-8 JSON, the form a version is stored in."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return zlib.compress(text.encode(), 6)


def _unpack(version: CampaignVersion) -> dict[str, Any]:
    if version.snapshot_zlib is None:
        return version.legacy_snapshot or {}  # written before compact history
    value: dict[str, Any] = json.loads(zlib.decompress(version.snapshot_zlib))
    return value


def delta(newer: dict[str, Any], older: dict[str, Any]) -> dict[str, Any]:
    """Return what turns ``newer`` back into ``older``: the fields to set and those to drop."""
    return {
        "set": {name: value for name, value in older.items() if newer.get(name, _NONE) != value},
        "drop": [name for name in newer if name not in older],
    }


def undo(newer: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """Apply a ``delta`` to the version after it: the older version."""
    kept = {name: value for name, value in newer.items() if name not in change["drop"]}
    return {**kept, **change["set"]}


_NONE = object()


def record(campaign: Campaign, action: str, note: str = "") -> CampaignVersion:
    """Store the campaign as it is now (after flush) as its current version.

    The new version holds the whole record; the one before it is rewritten to keep only the
    fields that differ (a save that changes the lessons of a 1 MB record adds a few hundred bytes
    and the one new whole record, not another megabyte per save).
    """
    snapshot = campaign_to_input(campaign)
    # A new campaign (version 1) has no version before it: no query (imports create thousands).
    newest = None
    if campaign.version > 1:
        newest = db.session.scalar(
            sa.select(CampaignVersion)
            .where(
                CampaignVersion.campaign_id == campaign.id,
                CampaignVersion.version < campaign.version,
            )
            .order_by(CampaignVersion.version.desc())
            .limit(1)
        )
    if newest is not None and newest.delta_of is None:
        newest.snapshot_zlib = pack(delta(snapshot, _unpack(newest)))
        newest.legacy_snapshot = None
        newest.delta_of = campaign.version
    version = CampaignVersion(
        campaign_id=campaign.id,
        version=campaign.version,
        action=action,
        snapshot_zlib=pack(snapshot),
        actor=audit.current_actor()[:120],
        note=note[:200],
    )
    db.session.add(version)
    # Keep the newest MAX_VERSIONS: a large record saved often would otherwise grow its history
    # without bound. The current version (whole) and those just before it always stay; each
    # older one needs only the newer ones to be rebuilt, so dropping the oldest breaks nothing.
    db.session.execute(
        sa.delete(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign.id,
            CampaignVersion.version <= campaign.version - MAX_VERSIONS,
        )
    )
    return version


def ensure_baseline(campaign: Campaign) -> None:
    """Keep the state of a campaign that has no history yet, before it is changed."""
    has_history = db.session.scalar(
        sa.select(CampaignVersion.id).where(CampaignVersion.campaign_id == campaign.id).limit(1)
    )
    if has_history is None:
        db.session.add(
            CampaignVersion(
                campaign_id=campaign.id,
                version=campaign.version,
                action="baseline",
                snapshot_zlib=pack(campaign_to_input(campaign)),
                actor="",
            )
        )


def snapshots(campaign_id: int, down_to: int = 0) -> list[tuple[CampaignVersion, dict[str, Any]]]:
    """Return a campaign's versions from the newest down to version ``down_to``, each rebuilt."""
    rebuilt: list[tuple[CampaignVersion, dict[str, Any]]] = []
    newer: tuple[CampaignVersion, dict[str, Any]] | None = None
    for version in versions(campaign_id, down_to):
        stored = _unpack(version)
        if version.delta_of is not None:
            if newer is None or newer[0].version != version.delta_of:
                # The version it was a delta of is gone: never expected (pruning removes the
                # oldest first), but a version that cannot be rebuilt must not pass as whole.
                raise LookupError(f"campaign {campaign_id} version {version.version} has no base")
            stored = undo(newer[1], stored)
        newer = (version, stored)
        rebuilt.append(newer)
    return rebuilt


def snapshot_of(version: CampaignVersion) -> dict[str, Any]:
    """Return the campaign as it was at ``version``."""
    if version.delta_of is None:
        return _unpack(version)
    return snapshots(version.campaign_id, version.version)[-1][1]


def may_read(campaign: Campaign) -> bool:
    """Whether the caller may read this campaign's history.

    Whoever may read campaigns may read their history, except a trashed campaign's: viewers no
    longer see the campaign, so not its history either; editors and admins do (to restore it).
    """
    if campaign.deleted_at is None:
        return True
    principal = access.current_principal()
    return principal is not None and principal.can("editor")


def versions(campaign_id: int, down_to: int = 0) -> list[CampaignVersion]:
    """Return a campaign's versions, newest first (down to version ``down_to``)."""
    return list(
        db.session.scalars(
            sa.select(CampaignVersion)
            .where(CampaignVersion.campaign_id == campaign_id, CampaignVersion.version >= down_to)
            .order_by(CampaignVersion.version.desc())
        )
    )


def get_version(campaign_id: int, version: int) -> CampaignVersion | None:
    return db.session.scalar(
        sa.select(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign_id, CampaignVersion.version == version
        )
    )


def previous_version(campaign_id: int, version: int) -> CampaignVersion | None:
    """Return the version just before ``version``, if any."""
    return db.session.scalar(
        sa.select(CampaignVersion)
        .where(CampaignVersion.campaign_id == campaign_id, CampaignVersion.version < version)
        .order_by(CampaignVersion.version.desc())
        .limit(1)
    )


VersionAction = Literal["baseline", "create", "update", "import", "trash", "restore", "revert"]


class VersionOut(Out):
    """One version in a campaign's history: what happened, who did it, when, what changed."""

    version: int
    action: VersionAction
    actor: str | None = Field(
        description="谁写的：user:<用户名> 或 token:<id>:<名称>；无记录时为 null"
    )
    note: str
    created_at: Timestamp
    changed_fields: list[str] = Field(description="与上一版相比改动的字段（中文名）")


class VersionList(Out):
    """A campaign's versions, newest first."""

    items: list[VersionOut]


class DiffLineOut(Out):
    """One line of a field's diff: " " kept, "-" removed, "+" added."""

    op: Literal[" ", "-", "+"]
    text: str


class FieldChangeOut(Out):
    """How one field changed from the previous version."""

    field: str
    label: str
    lines: list[DiffLineOut]


class VersionDetailOut(VersionOut):
    """One version with the campaign as it was then and its diff against the previous version."""

    snapshot: dict[str, Any] = Field(
        description="该版本的活动字段（与 CampaignIn 同形，不含 id、version 与时间戳）"
    )
    changes: list[FieldChangeOut]


def version_out(version: CampaignVersion, changed: list[str]) -> VersionOut:
    """Return a version's metadata in the API shape (without the snapshot)."""
    return VersionOut(
        version=version.version,
        action=version.action,
        actor=version.actor or None,
        note=version.note,
        created_at=version.created_at,
        changed_fields=changed,
    )


def version_detail_out(version: CampaignVersion, changes: list[FieldChange]) -> VersionDetailOut:
    """Return a version with its snapshot and its diff against the previous version."""
    return VersionDetailOut(
        **version_out(version, [c.label for c in changes]).model_dump(),
        snapshot=snapshot_of(version),
        changes=[
            FieldChangeOut(
                field=c.name,
                label=c.label,
                lines=[DiffLineOut(op=line.op, text=line.text) for line in c.lines],
            )
            for c in changes
        ],
    )


@dataclass(frozen=True)
class DiffLine:
    """One line of a text diff: " " kept, "-" removed, "+" added."""

    op: str
    text: str


@dataclass(frozen=True)
class FieldChange:
    """What changed in one field: old and new values shown as lines, and their diff."""

    name: str
    label: str
    lines: list[DiffLine] = field(default_factory=list)


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[FieldChange]:
    """Return the fields that differ between two snapshots (all fields when ``before`` is None)."""
    changes = []
    for name, label in FIELD_LABELS.items():
        old = _as_lines(name, before.get(name)) if before is not None else []
        new = _as_lines(name, after.get(name))
        if before is not None and old == new:
            continue
        if before is None and not new:
            continue
        changes.append(FieldChange(name, label, _line_diff(old, new)))
    return changes


def with_changed_fields(campaign_id: int) -> list[tuple[CampaignVersion, list[str]]]:
    """Return a campaign's versions, newest first, each with the fields it changed."""
    newest_first = snapshots(campaign_id)
    older = [*(snapshot for _, snapshot in newest_first[1:]), None]
    return [
        (version, changed_fields(before, snapshot))
        for (version, snapshot), before in zip(newest_first, older, strict=True)
    ]


def version_diff(
    campaign_id: int, version: int
) -> tuple[CampaignVersion, CampaignVersion | None, list[FieldChange]] | None:
    """Return a version, the one before it and what changed between them (None: no such one)."""
    shown = get_version(campaign_id, version)
    if shown is None:
        return None
    previous = previous_version(campaign_id, version)
    rebuilt = snapshots(campaign_id, previous.version if previous else version)
    before = rebuilt[-1][1] if previous else None
    after = next(snapshot for row, snapshot in rebuilt if row.version == version)
    return shown, previous, diff(before, after)


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Return the labels of the fields that differ (for the history list)."""
    if before is None:
        return []
    return [change.label for change in diff(before, after)]


def _line_diff(old: list[str], new: list[str]) -> list[DiffLine]:
    lines: list[DiffLine] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "equal":
            lines.extend(DiffLine(" ", text) for text in old[i1:i2])
            continue
        lines.extend(DiffLine("-", text) for text in old[i1:i2])
        lines.extend(DiffLine("+", text) for text in new[j1:j2])
    return lines


def _as_lines(name: str, value: Any) -> list[str]:
    """Render one field as the lines a person compares."""
    if value is None or value == "" or value == []:
        return []
    if name in TEXT_FIELDS:
        return [line for line in str(value).splitlines() if line.strip()]
    if name == "goal_type":
        return [labels.GOAL_TYPES.get(value, value)]
    if name == "status":
        return [labels.STATUSES.get(value, value)]
    if name in ("audience", "products", "channels", "tags"):
        return ["、".join(str(item) for item in value)]
    if name == "budget_cny":
        return [rendering.format_cny(float(value))]
    if name in ("start_date", "end_date"):
        return [rendering.format_date(date.fromisoformat(str(value)[:10]))]
    if name == "rewards":
        return [
            f"{r['type']}：{r.get('detail', '')}{'（可叠加）' if r.get('stackable') else ''}"
            for r in value
        ]
    if name == "metrics":
        return [
            f"{m['name']}：基线 {_num(m.get('baseline'), m.get('unit'))} · "
            f"目标 {_num(m.get('target'), m.get('unit'))} · 实际 {_num(m.get('actual'), m.get('unit'))}"
            for m in value
        ]
    if name == "hypotheses":
        return [
            f"{h['statement']} → {labels.HYPOTHESIS_RESULTS.get(h['result'], h['result'])}"
            + (f"（{h['evidence']}）" if h.get("evidence") else "")
            for h in value
        ]
    if name == "documents":
        lines: list[str] = []
        for doc in value:
            kind = labels.DOCUMENT_KINDS.get(doc["kind"], doc["kind"])
            lines.append(f"【{kind}】{doc['title']}")
            lines.extend(f"  {line}" for line in str(doc.get("body", "")).splitlines() if line)
        return lines
    return [str(value)]


def _num(value: Any, unit: str | None = None) -> str:
    # 52 万元 beside 50 万元, as the campaign page writes them, not "500000.0 → 520000.0".
    return rendering.format_number(None if value is None else float(value), unit)
