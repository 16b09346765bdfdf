"""runs.prompt_texts: the prompt's tokens as text (empty for older runs, whose views degrade).

Revision ID: r2_prompt_texts
Revises: r1_first_release
"""

import sqlalchemy as sa
from alembic import op

revision = "r2_prompt_texts"
down_revision = "r1_first_release"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("prompt_texts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("prompt_texts")
