"""index change feed followed by every host

Revision ID: a5d3f7c9e1b2
Revises: f2b8c1d4e6a7
Create Date: 2026-12-07 06:40:00.000000

The outbox was a queue: whichever host drained an entry deleted it, so the other hosts' keyword
indexes stayed stale. It becomes a feed that hosts follow with their own marks (index_host);
embeddings are claimed on the entries themselves (embedded_at, claimed_by, claimed_until), and
entries every live host has passed are pruned (index_feed_state.pruned_upto). Entries already
queued are kept and wait for their embeddings like new ones.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a5d3f7c9e1b2"
down_revision = "f2b8c1d4e6a7"
branch_labels = None
depends_on = None


def upgrade():
    # SQLite: a recreated table must keep AUTOINCREMENT (ids never repeat, 7b3e91c4d2a8).
    with op.batch_alter_table("index_outbox", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("embedded_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_index_outbox_embedded_at", ["embedded_at"], unique=False)
    op.create_table(
        "index_host",
        sa.Column("host_id", sa.String(length=100), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("host_id"),
    )
    state = op.create_table(
        "index_feed_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pruned_upto", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(state, [{"id": 1, "pruned_upto": 0}])


def downgrade():
    op.drop_table("index_feed_state")
    op.drop_table("index_host")
    # SQLite: a recreated table must keep AUTOINCREMENT (ids never repeat, 7b3e91c4d2a8).
    with op.batch_alter_table("index_outbox", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_index("ix_index_outbox_embedded_at")
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
        batch.drop_column("embedded_at")
