"""file validation verdict and quarantine flag

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Fetch -> Validate -> Upload: each delivered file records its format check's
verdict, and whether it went to quarantine instead of the job folder.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("file_metadata", sa.Column("validation", sa.String(length=16), nullable=True))
    op.add_column(
        "file_metadata",
        sa.Column("quarantined", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("file_metadata", "quarantined")
    op.drop_column("file_metadata", "validation")
