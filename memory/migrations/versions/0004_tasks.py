"""Few-shot tasks share the documents table (kind "task") and the job queue (jobs.kind); their trials have no
general-ability scores. Jobs count their attempts (an item that keeps killing the agent is given up).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="document"))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="document"))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("trials") as batch:
        batch.alter_column("general_before", existing_type=sa.Double(), nullable=True)
        batch.alter_column("general_after", existing_type=sa.Double(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.alter_column("general_after", existing_type=sa.Double(), nullable=False)
        batch.alter_column("general_before", existing_type=sa.Double(), nullable=False)
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attempts")
        batch.drop_column("kind")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("kind")
