"""index outbox ids never repeat

Revision ID: 7b3e91c4d2a8
Revises: 5c0a7e2b9d41
Create Date: 2026-12-07 03:25:00.000000

SQLite hands out max(id) + 1 for a plain INTEGER PRIMARY KEY, so an id came back once the
outbox emptied, and a rebuild that remembered the old row deleted the new one unseen.
AUTOINCREMENT makes SQLite's ids grow forever, as PostgreSQL's sequence already does.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7b3e91c4d2a8'
down_revision = '5c0a7e2b9d41'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return  # a PostgreSQL sequence never repeats
    with op.batch_alter_table(
        "index_outbox", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "index_outbox", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
