"""initial fetcher db schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22

The four tables of the design, plus the channel store (sealed secrets), the source-side
identity of fetched files, and the retry settings with the design's defaults.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("channel_id", sa.String(length=200), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("config_json", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_channels")),
    )
    op.create_table(
        "fetcher_details",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("structure_id", sa.String(length=255), nullable=False),
        sa.Column("fetcher_name", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fetcher_details")),
        sa.UniqueConstraint("fetcher_name", name=op.f("uq_fetcher_details_fetcher_name")),
        sa.UniqueConstraint(
            "structure_id", "version", name=op.f("uq_fetcher_details_structure_id")
        ),
    )
    op.create_table(
        "file_metadata",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("channel_id", sa.String(length=200), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("s3_key", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_metadata")),
        sa.UniqueConstraint("job_id", "file_path", name=op.f("uq_file_metadata_job_id")),
    )
    op.create_index(
        "ix_file_metadata_channel_hash",
        "file_metadata",
        ["channel_id", "content_hash"],
        unique=False,
    )
    op.create_index(
        "ix_file_metadata_channel_path", "file_metadata", ["channel_id", "file_path"], unique=False
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("channel_id", sa.String(length=200), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("flow", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("config_json", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("metadata_json", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("s3_output_path", sa.Text(), nullable=True),
        sa.Column("parsers_published", sa.Boolean(), nullable=False),
        sa.Column("status_published", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_job_runs_job_id")),
    )
    op.create_index(op.f("ix_job_runs_channel_id"), "job_runs", ["channel_id"], unique=False)
    op.create_table(
        "retry_settings",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("max_simple_retries", sa.Integer(), nullable=False),
        sa.Column("max_heal_retries", sa.Integer(), nullable=False),
        sa.Column("retry_delay_seconds", sa.Float(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_retry_settings")),
    )
    op.create_table(
        "source_files",
        sa.Column("channel_id", sa.String(length=200), nullable=False),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("mtime", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("channel_id", "source_key", name=op.f("pk_source_files")),
    )
    op.create_table(
        "channel_fetcher_details",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=200), nullable=False),
        sa.Column("fetcher_id", sa.Integer(), nullable=False),
        sa.Column("config_json", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["fetcher_id"],
            ["fetcher_details.id"],
            name=op.f("fk_channel_fetcher_details_fetcher_id_fetcher_details"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_fetcher_details")),
    )
    op.create_index(
        op.f("ix_channel_fetcher_details_channel_id"),
        "channel_fetcher_details",
        ["channel_id"],
        unique=False,
    )
    op.execute(
        "INSERT INTO retry_settings (scope, max_simple_retries, max_heal_retries,"
        " retry_delay_seconds) VALUES ('default', 3, 2, 30)"
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_channel_fetcher_details_channel_id"), table_name="channel_fetcher_details"
    )
    op.drop_table("channel_fetcher_details")
    op.drop_table("source_files")
    op.drop_table("retry_settings")
    op.drop_index(op.f("ix_job_runs_channel_id"), table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_index("ix_file_metadata_channel_path", table_name="file_metadata")
    op.drop_index("ix_file_metadata_channel_hash", table_name="file_metadata")
    op.drop_table("file_metadata")
    op.drop_table("fetcher_details")
    op.drop_table("channels")
