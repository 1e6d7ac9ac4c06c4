"""The image cache's records: which API node holds or queues which image.

Revision ID: 0005_cache
Revises: 0004_metadefs
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_cache"
down_revision = "0004_metadefs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``cache_nodes`` and ``cache_entries``."""
    op.create_table(
        "cache_nodes",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "cache_entries",
        sa.Column(
            "node",
            sa.String(255),
            sa.ForeignKey("cache_nodes.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("image_id", sa.String(36), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger()),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("last_accessed", sa.DateTime(timezone=True)),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cache_entries_image_id", "cache_entries", ["image_id"])


def downgrade() -> None:
    """Drop them (the cached files stay on each node's disk; the next start indexes them)."""
    op.drop_table("cache_entries")
    op.drop_table("cache_nodes")
