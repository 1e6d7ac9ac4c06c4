"""Glance's image_tags and image_members, for the Image API's tags and shared images.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    ]


def upgrade() -> None:
    """Create the two tables and the indexes image listing uses."""
    op.create_table(
        "image_tags",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("image_id", "value", name="ix_image_tags_image_id_value"),
    )
    op.create_index("ix_image_tags_image_id", "image_tags", ["image_id"])
    op.create_table(
        "image_members",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("can_share", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        *_timestamps(),
        sa.UniqueConstraint("image_id", "member", name="ix_image_members_image_id_member"),
    )
    op.create_index("ix_image_members_member", "image_members", ["member"])
    op.create_index("ix_images_owner", "images", ["owner"])
    op.create_index("ix_images_visibility", "images", ["visibility"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_images_visibility", "images")
    op.drop_index("ix_images_owner", "images")
    op.drop_table("image_members")
    op.drop_table("image_tags")
