"""Database models: a campaign with its rewards, metrics, hypotheses and documents."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kb.extensions import db


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp, also on SQLite (which stores no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class Campaign(db.Model):  # type: ignore[name-defined,misc]  # Flask-SQLAlchemy's dynamic base
    """One campaign: the five elements, its dates and status, and its retrospective."""

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    industry: Mapped[str] = mapped_column(sa.String(50), index=True)
    department: Mapped[str] = mapped_column(sa.String(100))
    business_line: Mapped[str | None] = mapped_column(sa.String(100))
    goal_type: Mapped[str] = mapped_column(sa.String(20), index=True)
    goal: Mapped[str] = mapped_column(sa.Text, default="")
    audience: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    products: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    channels: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    start_date: Mapped[date] = mapped_column(sa.Date, index=True)
    end_date: Mapped[date] = mapped_column(sa.Date, index=True)
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    budget_cny: Mapped[float | None] = mapped_column(sa.Float)

    summary: Mapped[str] = mapped_column(sa.Text, default="")
    went_well: Mapped[str] = mapped_column(sa.Text, default="")
    problems: Mapped[str] = mapped_column(sa.Text, default="")
    lessons: Mapped[str] = mapped_column(sa.Text, default="")
    recommendations: Mapped[str] = mapped_column(sa.Text, default="")

    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set when the campaign is in the trash; such campaigns are hidden everywhere but the trash.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    rewards: Mapped[list[Reward]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="Reward.position"
    )
    metrics: Mapped[list[Metric]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="Metric.position"
    )
    hypotheses: Mapped[list[Hypothesis]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="Hypothesis.position"
    )
    documents: Mapped[list[Document]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="Document.position"
    )

    # SQLAlchemy bumps ``version`` on every UPDATE and refuses one whose row changed meanwhile.
    __mapper_args__: dict[str, Any] = {"version_id_col": version}  # noqa: RUF012  # SQLAlchemy API


class _Child:
    """Columns every per-campaign row list shares: its campaign and its place in the list."""

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)


class Reward(_Child, db.Model):  # type: ignore[name-defined,misc]
    """An incentive of a campaign, and whether it stacks with other rewards."""

    __tablename__ = "reward"

    type: Mapped[str] = mapped_column(sa.String(50))
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    stackable: Mapped[bool] = mapped_column(default=False)
    campaign: Mapped[Campaign] = relationship(back_populates="rewards")


class Metric(_Child, db.Model):  # type: ignore[name-defined,misc]
    """An outcome metric as the team named it, with its catalog key when the name is known."""

    __tablename__ = "metric"

    name: Mapped[str] = mapped_column(sa.String(100))
    catalog_key: Mapped[str | None] = mapped_column(sa.String(50), index=True)
    unit: Mapped[str] = mapped_column(sa.String(20), default="")
    baseline: Mapped[float | None] = mapped_column(sa.Float)
    target: Mapped[float | None] = mapped_column(sa.Float)
    actual: Mapped[float | None] = mapped_column(sa.Float)
    # The author marked this the campaign's key metric (主要指标); at most one per campaign.
    # False everywhere means "not chosen": kb.campaigns.key_metric picks one by goal type.
    key: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    campaign: Mapped[Campaign] = relationship(back_populates="metrics")


class Hypothesis(_Child, db.Model):  # type: ignore[name-defined,misc]
    """A hypothesis the campaign tested, and what came of it."""

    __tablename__ = "hypothesis"

    statement: Mapped[str] = mapped_column(sa.Text)
    result: Mapped[str] = mapped_column(sa.String(20))
    evidence: Mapped[str] = mapped_column(sa.Text, default="")
    campaign: Mapped[Campaign] = relationship(back_populates="hypotheses")


class Document(_Child, db.Model):  # type: ignore[name-defined,misc]
    """A Markdown document attached to a campaign: strategy, plan, deck text."""

    __tablename__ = "document"

    title: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    campaign: Mapped[Campaign] = relationship(back_populates="documents")


class IndexOutbox(db.Model):  # type: ignore[name-defined,misc]
    """An entry of the change feed: a campaign changed, written in the same transaction.

    The id is the feed's sequence number: it never repeats and ids become visible in order
    (kb.outbox). Nobody deletes an entry on reading it: every host applies the entries above
    its own mark (``IndexHost``) to its keyword index; the embeddings an entry asks for are
    computed once, by whichever host claims it. Entries every live host has passed, and whose
    embeddings are stored, are pruned (``IndexFeedState.pruned_upto``).
    """

    __tablename__ = "index_outbox"
    # SQLite would reuse the highest id once the table empties; an id must never come back.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key: the entry must outlive a purged campaign so its index entry is removed.
    campaign_id: Mapped[int] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set once the campaign's embeddings (as of this entry or later) are stored for all hosts.
    embedded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The host computing them, until when: an expired claim (a dead host) is taken over.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IndexHost(db.Model):  # type: ignore[name-defined,misc]
    """A host following the change feed: the last entry its keyword index has applied."""

    __tablename__ = "index_host"

    host_id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    # Entries above this are kept for the host; its own index directory holds the same mark.
    last_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IndexFeedState(db.Model):  # type: ignore[name-defined,misc]
    """The feed's one bookkeeping row: every entry up to ``pruned_upto`` has been deleted.

    A host whose mark is below it missed entries and catches up from the database instead.
    """

    __tablename__ = "index_feed_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    pruned_upto: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class PassageEmbedding(db.Model):  # type: ignore[name-defined,misc]
    """The embedding of one passage of a campaign by one model (float32 bytes).

    Kept in the database, so a rebuild of the in-memory vector index does not re-encode, and a
    change of model is seen (other name or dimension) and re-embedded rather than mixed.
    """

    __tablename__ = "passage_embedding"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "model", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    model: Mapped[str] = mapped_column(sa.String(200), index=True)
    dim: Mapped[int]
    position: Mapped[int]
    section: Mapped[str] = mapped_column(sa.String(200))
    # Which text was embedded, so an unchanged passage is not encoded again.
    text_sha1: Mapped[str] = mapped_column(sa.String(40))
    vector: Mapped[bytes] = mapped_column(sa.LargeBinary)


class SimilarFeedback(db.Model):  # type: ignore[name-defined,misc]
    """A past campaign a planner marked as not useful for one draft (hidden for that draft)."""

    __tablename__ = "similar_feedback"
    __table_args__ = (sa.UniqueConstraint("draft_key", "campaign_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "campaign:<id>" for a saved campaign, else a key the client chose for its draft.
    draft_key: Mapped[str] = mapped_column(sa.String(100), index=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Playbook(db.Model):  # type: ignore[name-defined,misc]
    """An editor's curated lesson: a play that worked (or did not), with the campaigns behind it."""

    __tablename__ = "playbook"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    # One of kb.insights.lessons.THEMES (reward, audience, channel, timing, budget, ops, risk).
    theme: Mapped[str] = mapped_column(sa.String(20), index=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    citations: Mapped[list[PlaybookCitation]] = relationship(
        back_populates="playbook",
        cascade="all, delete-orphan",
        order_by="PlaybookCitation.position",
    )

    __mapper_args__: dict[str, Any] = {"version_id_col": version}  # noqa: RUF012  # SQLAlchemy API


class PlaybookCitation(db.Model):  # type: ignore[name-defined,misc]
    """A campaign a playbook cites, as support or as a contradiction."""

    __tablename__ = "playbook_citation"
    __table_args__ = (sa.UniqueConstraint("playbook_id", "campaign_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    playbook_id: Mapped[int] = mapped_column(
        sa.ForeignKey("playbook.id", ondelete="CASCADE"), index=True
    )
    # A purged campaign takes its citations with it; a trashed one is hidden where shown.
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    stance: Mapped[str] = mapped_column(sa.String(20))  # "supports" or "contradicts"
    position: Mapped[int] = mapped_column(default=0)
    playbook: Mapped[Playbook] = relationship(back_populates="citations")


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """A person who signs in: a viewer reads, an editor writes campaigns, an admin runs the place."""

    __tablename__ = "user_account"  # "user" is a reserved word in PostgreSQL

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(100), default="")
    # argon2id, as argon2-cffi writes it (parameters and salt inside the string).
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))  # viewer | editor | admin
    active: Mapped[bool] = mapped_column(default=True)
    # Bumped when the password changes or the account is disabled: older sessions stop working.
    session_epoch: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def get_id(self) -> str:
        """The session's user id: "id:epoch", so a new password ends older sessions."""
        return f"{self.id}:{self.session_epoch}"

    @property
    def is_active(self) -> bool:  # Flask-Login reads it as a property
        return bool(self.active)


class ApiToken(db.Model):  # type: ignore[name-defined,misc]
    """A bearer token for scripts and other systems; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[str] = mapped_column(sa.String(20))
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The first characters of the token, so an admin can tell tokens apart without the secret.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_by: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserSession(db.Model):  # type: ignore[name-defined,misc]
    """A browser sign-in: the cookie carries a random id, only its SHA-256 is stored here.

    Signing out revokes the row, so a copied cookie stops working at once (Flask's session is a
    signed cookie: without this, a copy stayed valid until it expired).
    """

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    sid_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignVersion(db.Model):  # type: ignore[name-defined,misc]
    """A campaign as it was after one change: the full record, who changed it, when and how."""

    __tablename__ = "campaign_version"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    # create | update | import | trash | restore | revert | baseline (state before history began)
    action: Mapped[str] = mapped_column(sa.String(20))
    # The record in the API's input shape (kb.campaigns.serialize.campaign_to_input) as
    # zlib-compressed UTF-8 JSON, or, when delta_of is set, only the fields that differ from
    # version delta_of (the next one). Read it with kb.campaigns.history, never directly.
    snapshot_zlib: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    delta_of: Mapped[int | None]
    # Rows written before compact history (migration f2b8c1d4e6a7) held plain JSON here.
    legacy_snapshot: Mapped[dict[str, Any] | None] = mapped_column(
        "snapshot", sa.JSON(none_as_null=True)
    )
    actor: Mapped[str] = mapped_column(sa.String(120), default="")
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(db.Model):  # type: ignore[name-defined,misc]
    """One accountable event: a write, a sign-in (or a failed one), a token used."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(sa.String(50), index=True)
    # "user:alice", "token:3:ci-bot", "cli", "anonymous": the same text the history shows.
    actor: Mapped[str] = mapped_column(sa.String(120), index=True)
    target: Mapped[str] = mapped_column(sa.String(200), default="")
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    ip: Mapped[str] = mapped_column(sa.String(64), default="")


class ImportJob(db.Model):  # type: ignore[name-defined,misc]
    """An import run in the background: the uploaded bytes, its options, progress and state.

    The file lives here, not on a host's disk, so any worker on any host can run or resume it.
    Rows are written in batches; each batch commits its campaigns, its report rows and
    ``rows_read`` together, so the report always says exactly what was written.
    """

    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    # queued → running → done | failed (kb.transfer.jobs.STATES).
    state: Mapped[str] = mapped_column(sa.String(10), default="queued", index=True)
    format: Mapped[str | None] = mapped_column(sa.String(10))
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    source: Mapped[bytes] = mapped_column(sa.LargeBinary)
    metrics_filename: Mapped[str | None] = mapped_column(sa.String(255))
    metrics: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    # {"dry_run": bool, "list": bool (a JSON list sent to the API, read as such)}.
    options: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    # Source rows consumed by committed batches: a resumed run skips exactly these.
    rows_read: Mapped[int] = mapped_column(default=0)
    rows_written: Mapped[int] = mapped_column(default=0)
    rows_rejected: Mapped[int] = mapped_column(default=0)
    # The reader's own progress (bytes or rows of the file) at the last committed batch.
    progress_done: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    warnings: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    # Random per claim: a batch commits only while its claim is still the job's claim.
    claim: Mapped[str | None] = mapped_column(sa.String(32))
    created_by: Mapped[str] = mapped_column(sa.String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ImportJobRow(db.Model):  # type: ignore[name-defined,misc]
    """One row of an import job's report, committed with the batch that wrote it."""

    __tablename__ = "import_job_row"
    __table_args__ = (sa.UniqueConstraint("job_id", "row", name="uq_import_job_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("import_job.id", ondelete="CASCADE"))
    row: Mapped[int]
    line: Mapped[int | None]
    # created / updated / unchanged / rejected
    outcome: Mapped[str] = mapped_column(sa.String(10))
    title: Mapped[str] = mapped_column(sa.Text, default="")
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    campaign_id: Mapped[int | None]
    fields: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
