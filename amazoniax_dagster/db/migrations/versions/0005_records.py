"""records: unified_items, the files they were read from (resume), and per-channel checkpoints

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "unified_items",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("source_name", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", JSONB(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("file_key", sa.Text(), nullable=False),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unified_items")),
        sa.UniqueConstraint(
            "source_type",
            "source_name",
            "external_id",
            name=op.f("uq_unified_items_source_type"),
        ),
    )
    op.create_index("ix_unified_items_source_name_id", "unified_items", ["source_name", "id"])
    op.create_index("ix_unified_items_published_at", "unified_items", ["published_at"])
    op.create_table(
        "record_files",
        sa.Column("channel_id", sa.String(length=200), nullable=False),
        sa.Column("file_key", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("extracted", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        _now("processed_at"),
        sa.PrimaryKeyConstraint("channel_id", "file_key", name=op.f("pk_record_files")),
    )
    op.create_table(
        "channel_checkpoints",
        sa.Column("channel_id", sa.String(length=200), nullable=False),
        sa.Column("cursor_type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=False),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_channel_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("channel_checkpoints")
    op.drop_table("record_files")
    op.drop_index("ix_unified_items_published_at", table_name="unified_items")
    op.drop_index("ix_unified_items_source_name_id", table_name="unified_items")
    op.drop_table("unified_items")
