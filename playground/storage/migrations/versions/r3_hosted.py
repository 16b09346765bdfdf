"""Hosted mode: runs.owner (the visitor's, private to them) and runs.published (in the gallery for everyone).

Runs stored before are nobody's (no visitor lists them) and unpublished.

Revision ID: r3_hosted
Revises: r2_prompt_texts
"""

import sqlalchemy as sa
from alembic import op

revision = "r3_hosted"
down_revision = "r2_prompt_texts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("owner", sa.String(64), nullable=True))
    op.create_index("ix_runs_owner", "runs", ["owner"])
    op.add_column("runs", sa.Column("published", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_owner")
        batch.drop_column("published")
        batch.drop_column("owner")
