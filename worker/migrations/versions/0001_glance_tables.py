"""Glance's images, image_properties, image_locations, tasks and task_info.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
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
    """Create the five tables."""
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("size", sa.BigInteger()),
        sa.Column("status", sa.String(30), nullable=False),
        *_timestamps(),
        sa.Column("disk_format", sa.String(20)),
        sa.Column("container_format", sa.String(20)),
        sa.Column("checksum", sa.String(32)),
        sa.Column("owner", sa.String(255)),
        sa.Column("min_disk", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("min_ram", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("protected", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("virtual_size", sa.BigInteger()),
        sa.Column("visibility", sa.String(20), nullable=False, server_default="shared"),
        sa.Column("os_hidden", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("os_hash_algo", sa.String(64)),
        sa.Column("os_hash_value", sa.String(128)),
    )
    op.create_index("ix_images_status", "images", ["status"])
    op.create_index("ix_images_os_hash_value", "images", ["os_hash_value"])
    op.create_table(
        "image_properties",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Text()),
        *_timestamps(),
        sa.UniqueConstraint("image_id", "name", name="ix_image_properties_image_id_name"),
    )
    op.create_index("ix_image_properties_image_id", "image_properties", ["image_id"])
    op.create_table(
        "image_locations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("meta_data", sa.JSON()),
        sa.Column("status", sa.String(30), nullable=False, server_default="active"),
        *_timestamps(),
    )
    op.create_index("ix_image_locations_image_id", "image_locations", ["image_id"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.Column("request_id", sa.String(64)),
        sa.Column("user_id", sa.String(64)),
        sa.Column("image_id", sa.String(36)),
        sa.Column("claimed_by", sa.String(255)),
    )
    op.create_index("ix_tasks_image_id", "tasks", ["image_id"])
    op.create_table(
        "task_info",
        sa.Column("task_id", sa.String(36), sa.ForeignKey("tasks.id"), primary_key=True),
        sa.Column("input", sa.JSON()),
        sa.Column("result", sa.JSON()),
        sa.Column("message", sa.Text()),
    )


def downgrade() -> None:
    """Drop the five tables."""
    for table in ("task_info", "tasks", "image_locations", "image_properties", "images"):
        op.drop_table(table)
