"""Chapters store the last event id of their latest attempt instead of a chunk count.

Every end state (complete, failed, interrupted) can then be numbered again after the stream
has gone, also after a crash that left the number of streamed chunks unknown.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# domain.chapter_events.FIRST_LAST_ID at the time of this revision: existing chapters count
# as their first attempt.
FIRST_LAST_ID = 1_000_000


def upgrade() -> None:
    with op.batch_alter_table('chapters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_event_id', sa.BigInteger(), nullable=False,
                                      server_default=sa.text(str(FIRST_LAST_ID))))
        batch_op.drop_column('chunk_count')


def downgrade() -> None:
    with op.batch_alter_table('chapters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chunk_count', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch_op.drop_column('last_event_id')
