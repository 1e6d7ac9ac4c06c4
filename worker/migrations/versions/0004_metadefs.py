"""The metadata definitions (metadef) tables, by Glance's names.

Revision ID: 0004_metadefs
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_metadefs"
down_revision = "0003"
branch_labels = None
depends_on = None

NAMESPACES = "metadef_namespaces"


def _times() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _in_namespace() -> sa.Column[Any]:
    return sa.Column(
        "namespace_id",
        sa.Integer(),
        sa.ForeignKey(f"{NAMESPACES}.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    """Create the six tables."""
    op.create_table(
        NAMESPACES,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(80), nullable=False),
        sa.Column("display_name", sa.String(80)),
        sa.Column("description", sa.Text()),
        sa.Column("visibility", sa.String(32), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        *_times(),
        sa.UniqueConstraint("namespace", name="uq_metadef_namespaces_namespace"),
    )
    op.create_index("ix_metadef_namespaces_owner", NAMESPACES, ["owner"])
    op.create_table(
        "metadef_objects",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _in_namespace(),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("required", sa.JSON(), nullable=False),
        sa.Column("json_schema", sa.JSON(), nullable=False),
        *_times(),
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_objects_namespace_id_name"),
    )
    op.create_table(
        "metadef_properties",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _in_namespace(),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("json_schema", sa.JSON(), nullable=False),
        *_times(),
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_properties_namespace_id_name"),
    )
    op.create_table(
        "metadef_tags",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _in_namespace(),
        sa.Column("name", sa.String(80), nullable=False),
        *_times(),
        sa.UniqueConstraint("namespace_id", "name", name="uq_metadef_tags_namespace_id_name"),
    )
    op.create_table(
        "metadef_resource_types",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        *_times(),
        sa.UniqueConstraint("name", name="uq_metadef_resource_types_name"),
    )
    op.create_table(
        "metadef_namespace_resource_types",
        sa.Column(
            "resource_type_id",
            sa.Integer(),
            sa.ForeignKey("metadef_resource_types.id"),
            primary_key=True,
        ),
        sa.Column(
            "namespace_id",
            sa.Integer(),
            sa.ForeignKey(f"{NAMESPACES}.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("properties_target", sa.String(80)),
        sa.Column("prefix", sa.String(80)),
        *_times(),
    )


def downgrade() -> None:
    """Drop them (every metadef is lost)."""
    for table in (
        "metadef_namespace_resource_types",
        "metadef_resource_types",
        "metadef_tags",
        "metadef_properties",
        "metadef_objects",
        NAMESPACES,
    ):
        op.drop_table(table)
