"""The audit log: who wrote what, who signed in (or failed to), which token was used.

Events are added to the caller's session, so a write and its audit entry commit or roll back
together. The actor comes from the request (set by kb.access) or is "cli" for commands.
"""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass

import sqlalchemy as sa
from flask import g, has_request_context, request

from kb.extensions import db
from kb.models import AuditEvent
from kb.vocab import ROLES

ACTION_LABELS: dict[str, str] = {
    "campaign.create": "新建活动",
    "campaign.update": "修改活动",
    "campaign.import": "导入活动",
    "campaign.trash": "移入回收站",
    "campaign.restore": "从回收站恢复",
    "campaign.revert": "恢复历史版本",
    "campaign.purge": "彻底删除活动",
    "playbook.create": "新建打法",
    "playbook.update": "修改打法",
    "playbook.delete": "删除打法",
    "feedback": "标记相似案例",
    "login.success": "登录成功",
    "login.failure": "登录失败",
    "logout": "退出登录",
    "user.create": "新建用户",
    "user.update": "修改用户",
    "user.password": "重设密码",
    "token.create": "新建令牌",
    "token.revoke": "吊销令牌",
    "token.use": "使用令牌",
}


def current_actor() -> str:
    """Return who is acting: "user:NAME", "token:ID:NAME", "anonymous", or "cli:OSUSER"."""
    if has_request_context():
        return str(g.get("kb_actor", "anonymous"))
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def describe_actor(actor: str) -> str:
    """Say who an actor string names, as the pages show it."""
    kind, _, rest = actor.partition(":")
    if kind == "user":
        return rest
    if kind == "token":
        return f"令牌 {rest.partition(':')[2] or rest}"
    if kind == "cli":
        return f"命令行（{rest}）" if rest else "命令行"
    if actor == "anonymous":
        return "匿名"
    return actor or "未知"


# What the stored target keys name ("campaign:12 标题", "token:3:ci-bot"), for the pages.
TARGET_KINDS: dict[str, str] = {
    "campaign": "活动",
    "playbook": "打法",
    "user": "用户",
    "token": "令牌",
}
_TARGET = re.compile(r"^(?P<kind>[a-z_]+):(?P<rest>.*)$", re.S)
_NUMBERED = re.compile(r"^(?P<id>\d+)(?:[ :](?P<name>.*))?$", re.S)
_ROLE_WORD = re.compile(r"(角色\s*)(" + "|".join(ROLES) + r")\b")


@dataclass(frozen=True, slots=True)
class Target:
    """An audited object as the log page shows it: its kind in Chinese, id, name."""

    kind: str
    label: str
    campaign_id: int | None = None


def describe_target(target: str) -> Target:
    """Say what a stored target names: "campaign:12 夜宵节" → 活动 #12 夜宵节 (linked)."""
    match = _TARGET.match(target)
    if match is None or match["kind"] not in TARGET_KINDS:
        return Target("", target)
    kind, rest = match["kind"], match["rest"]
    numbered = _NUMBERED.match(rest) if kind != "user" else None
    if numbered is None:
        return Target(TARGET_KINDS[kind], rest)
    name = (numbered["name"] or "").strip()
    label = f"#{numbered['id']}" + (f" {name}" if name else "")
    campaign_id = int(numbered["id"]) if kind == "campaign" else None
    return Target(TARGET_KINDS[kind], label, campaign_id)


def describe_detail(detail: str) -> str:
    """Say a stored detail in words: role codes ("角色 editor") as their Chinese names."""
    return _ROLE_WORD.sub(lambda m: m[1] + ROLES[m[2]], detail)


def record(action: str, target: str = "", detail: str = "", *, actor: str | None = None) -> None:
    """Add an event to the current session; it commits with the caller's transaction."""
    ip = ""
    if has_request_context():
        ip = request.remote_addr or ""
    db.session.add(
        AuditEvent(
            action=action,
            actor=(actor or current_actor())[:120],
            target=target[:200],
            detail=detail[:2000],
            ip=ip[:64],
        )
    )


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEvent]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_events(
    *, page: int = 1, per_page: int = 50, action: str = "", actor: str = ""
) -> AuditPage:
    """Return events newest first, optionally only one action (or prefix such as "login")."""
    query = sa.select(AuditEvent)
    if action:
        query = query.where(
            sa.or_(AuditEvent.action == action, AuditEvent.action.startswith(action + "."))
        )
    if actor:
        query = query.where(AuditEvent.actor.contains(actor))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    items = db.session.scalars(
        query.order_by(AuditEvent.id.desc()).offset((page - 1) * per_page).limit(per_page)
    )
    return AuditPage(list(items), total, page, per_page)
