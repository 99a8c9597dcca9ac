"""compact campaign history: versions stored as zlib-compressed JSON

Revision ID: f2b8c1d4e6a7
Revises: e7a41c9b2d60
Create Date: 2026-12-07 06:30:00.000000

A version held the whole record as JSON text with every Chinese character escaped (\\uXXXX, six
bytes): a 1 MB record added about 4-6 MB per save. The newest version now goes into snapshot_zlib
as compressed UTF-8 JSON and each older one keeps only the fields that differ from the next
(delta_of). The rows already there are converted in batches to compressed whole records (the code
still reads a row left in the old column). The compression is written out here, not imported, so
this migration keeps doing the same thing whatever the application code becomes. Downgrading
rebuilds whole records from the deltas first.
"""
import json
import zlib

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f2b8c1d4e6a7'
down_revision = 'e7a41c9b2d60'
branch_labels = None
depends_on = None

BATCH = 200

versions = sa.table(
    "campaign_version",
    sa.column("id", sa.Integer),
    sa.column("campaign_id", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("snapshot", sa.JSON),
    sa.column("snapshot_zlib", sa.LargeBinary),
    sa.column("delta_of", sa.Integer),
)


def upgrade():
    with op.batch_alter_table("campaign_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snapshot_zlib", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("delta_of", sa.Integer(), nullable=True))
        batch_op.alter_column("snapshot", existing_type=sa.JSON(), nullable=True)
    bind = op.get_bind()
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(versions.c.id, versions.c.snapshot)
            .where(versions.c.id > last_id, versions.c.snapshot_zlib.is_(None))
            .order_by(versions.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for row_id, snapshot in rows:
            packed = zlib.compress(
                json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode()
            )
            bind.execute(
                versions.update()
                .where(versions.c.id == row_id)
                .values(snapshot_zlib=packed, snapshot=sa.null())
            )
        last_id = rows[-1][0]


def downgrade():
    bind = op.get_bind()
    campaign_ids = bind.execute(
        sa.select(versions.c.campaign_id)
        .where(versions.c.snapshot_zlib.is_not(None))
        .distinct()
        .order_by(versions.c.campaign_id)
    ).scalars().all()
    for campaign_id in campaign_ids:
        # Newest first: each delta holds the fields that differ from the version after it.
        rows = bind.execute(
            sa.select(
                versions.c.id, versions.c.snapshot, versions.c.snapshot_zlib, versions.c.delta_of
            )
            .where(versions.c.campaign_id == campaign_id)
            .order_by(versions.c.version.desc())
        ).all()
        newer = None
        for row_id, plain, packed, delta_of in rows:
            if packed is None:
                newer = plain
                continue
            value = json.loads(zlib.decompress(packed))
            if delta_of is not None and newer is not None:
                value = {
                    **{k: v for k, v in newer.items() if k not in value["drop"]},
                    **value["set"],
                }
            newer = value
            bind.execute(
                versions.update()
                .where(versions.c.id == row_id)
                .values(snapshot=value, snapshot_zlib=None)
            )
    with op.batch_alter_table("campaign_version", schema=None) as batch_op:
        batch_op.alter_column("snapshot", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("delta_of")
        batch_op.drop_column("snapshot_zlib")
