"""fetcher registry: version status, kind, git commit; one current mapping per channel

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

``fetcher_details`` gains the version's kind, its status (candidate -> published | rejected),
the Git commit that holds it and its provenance. ``channel_fetcher_details`` keeps history:
a remap closes the current row (``replaced_at``) and opens a new one; a partial unique index
allows one current row per channel. Rows from before the registry count as published recipes,
and of several rows of one channel only the newest stays current.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "fetcher_details",
        sa.Column("kind", sa.String(length=16), server_default="recipe", nullable=False),
    )
    op.add_column(
        "fetcher_details",
        sa.Column("status", sa.String(length=16), server_default="published", nullable=False),
    )
    op.add_column("fetcher_details", sa.Column("git_commit", sa.String(length=64), nullable=True))
    op.add_column(
        "fetcher_details",
        sa.Column(
            "provenance_json",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "fetcher_details", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE fetcher_details SET published_at = created_at")
    # The defaults only filled existing rows; new rows always say what they are.
    for column in ("kind", "status", "provenance_json"):
        op.alter_column("fetcher_details", column, server_default=None)
    op.create_check_constraint(
        "ck_fetcher_details_kind", "fetcher_details", "kind IN ('recipe', 'browser', 'python')"
    )
    op.create_check_constraint(
        "ck_fetcher_details_status",
        "fetcher_details",
        "status IN ('candidate', 'published', 'rejected')",
    )

    op.add_column(
        "channel_fetcher_details",
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute(
        "UPDATE channel_fetcher_details SET replaced_at = now() WHERE id NOT IN "
        "(SELECT max(id) FROM channel_fetcher_details GROUP BY channel_id)"
    )
    op.create_index(
        "uq_channel_fetcher_details_current",
        "channel_fetcher_details",
        ["channel_id"],
        unique=True,
        postgresql_where=sa.text("replaced_at IS NULL"),
    )
    op.create_index(
        op.f("ix_channel_fetcher_details_fetcher_id"),
        "channel_fetcher_details",
        ["fetcher_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_channel_fetcher_details_fetcher_id"), table_name="channel_fetcher_details"
    )
    op.drop_index("uq_channel_fetcher_details_current", table_name="channel_fetcher_details")
    op.drop_column("channel_fetcher_details", "replaced_at")
    op.drop_constraint("ck_fetcher_details_status", "fetcher_details", type_="check")
    op.drop_constraint("ck_fetcher_details_kind", "fetcher_details", type_="check")
    for column in ("published_at", "provenance_json", "git_commit", "status", "kind"):
        op.drop_column("fetcher_details", column)
