"""metric key: the author's choice of a campaign's key metric (主要指标)

Revision ID: 5c0a7e2b9d41
Revises: ec6f749441e9
Create Date: 2026-12-07 04:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c0a7e2b9d41'
down_revision = 'ec6f749441e9'
branch_labels = None
depends_on = None


def upgrade():
    # Existing metrics get false: no choice made, so the key metric follows the goal type.
    with op.batch_alter_table('metric', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('metric', schema=None) as batch_op:
        batch_op.drop_column('key')
