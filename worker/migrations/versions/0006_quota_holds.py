"""What admitted imports will add to their project's usage (unified limits).

Revision ID: 0006_quota_holds
Revises: 0005_cache
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_quota_holds"
down_revision = "0005_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``quota_holds``."""
    op.create_table(
        "quota_holds",
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_quota_holds_project", "quota_holds", ["project", "resource"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_quota_holds_project", table_name="quota_holds")
    op.drop_table("quota_holds")
