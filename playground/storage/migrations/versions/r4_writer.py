"""runs.writer: which process records a run while it is `running` (host, boot, process id and start time), so that
a run left `running` by a process that is gone can be told from one still being recorded (storage/interrupted.py).

Runs stored before have no writer: one of them still `running` is stale and is marked failed at the next open.

Revision ID: r4_writer
Revises: r3_hosted
"""

import sqlalchemy as sa
from alembic import op

revision = "r4_writer"
down_revision = "r3_hosted"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("writer", sa.String(256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("writer")
