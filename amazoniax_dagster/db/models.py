"""Tables of the fetcher DB (docs/architecture.md). The schema itself is owned by the Alembic
migrations in ``migrations/versions``; a test keeps these tables and the migrations in step.

SQLAlchemy Core tables, for Alembic and that test only: the repository's plain SQL
(``repository.py``, ``fetchers.py``) names the same tables and columns, and a job process never
imports this module (see ``pg.py``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _timestamp(name: str, *, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _created() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False)


def _updated() -> Column[object]:
    return Column(
        "updated_at",
        DateTime(timezone=True),
        server_default=func.now(),
        onupdate=func.now(),
        nullable=False,
    )


# One version of a site's fetcher (``<domain>_fetcher_vN``), a folder in the fetchers repo.
# ``status``: candidate (allocated, not yet in Git) -> published (committed on main, may be
# mapped) or rejected (failed validation, kept on a candidates/ branch). ``kind``: recipe,
# browser or python.
fetcher_details = Table(
    "fetcher_details",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("structure_id", String(255), nullable=False),
    Column("fetcher_name", String(255), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("git_commit", String(64), nullable=True),
    Column("provenance_json", JSONB, nullable=False, default=dict),
    _created(),
    _timestamp("published_at"),
    UniqueConstraint("structure_id", "version"),
    CheckConstraint("kind IN ('recipe', 'browser', 'python')", name="ck_fetcher_details_kind"),
    CheckConstraint(
        "status IN ('candidate', 'published', 'rejected')", name="ck_fetcher_details_status"
    ),
)

# Which fetcher version a channel runs, and ran: a remap closes the current row
# (``replaced_at``) and adds a new one, so at most one row per channel is current.
channel_fetcher_details = Table(
    "channel_fetcher_details",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel_id", String(200), nullable=False, index=True),
    Column("fetcher_id", ForeignKey("fetcher_details.id"), nullable=False, index=True),
    # Sealed like the channel store: secret-named fields are encrypted.
    Column("config_json", JSONB, nullable=False, default=dict),
    _created(),
    _timestamp("replaced_at"),
    Index(
        "uq_channel_fetcher_details_current",
        "channel_id",
        unique=True,
        postgresql_where=text("replaced_at IS NULL"),
    ),
)

# The latest config of a channel; secret fields are sealed (encrypted) in ``config_json``.
channels = Table(
    "channels",
    metadata,
    Column("channel_id", String(200), primary_key=True),
    Column("source_type", String(16), nullable=False),
    Column("config_json", JSONB, nullable=False),
    _created(),
    _updated(),
)

# One job (one Kafka message or one UI launch) and how it ended.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", String(200), nullable=False, unique=True),
    Column("channel_id", String(200), nullable=False, index=True),
    Column("source_type", String(16), nullable=False),
    Column("flow", String(16), nullable=False),
    # queued -> running -> success | failed | canceled | requires_human_review
    Column("status", String(32), nullable=False),
    # The job's own config snapshot (sealed), so a later message for the same channel cannot
    # change what this job fetches.
    Column("config_json", JSONB, nullable=True),
    Column("metadata_json", JSONB, nullable=False, default=dict),
    Column("message", Text, nullable=True),
    Column("dagster_run_id", String(64), nullable=True),
    Column("s3_output_path", Text, nullable=True),
    Column("parsers_published", Boolean, nullable=False, default=False),
    Column("status_published", Boolean, nullable=False, default=False),
    _created(),
    _timestamp("started_at"),
    _timestamp("finished_at"),
)

# A file a job delivered (new or updated) to the output bucket.
file_metadata = Table(
    "file_metadata",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("job_id", String(200), nullable=False),
    Column("channel_id", String(200), nullable=False),
    Column("file_path", Text, nullable=False),
    Column("s3_key", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("file_size", BigInteger, nullable=False),
    Column("classification", String(16), nullable=False),
    # The format check's verdict (valid | invalid | skipped), None when not checked.
    Column("validation", String(16), nullable=True),
    Column("quarantined", Boolean, nullable=False, default=False, server_default=false()),
    _created(),
    UniqueConstraint("job_id", "file_path"),
    Index("ix_file_metadata_channel_path", "channel_id", "file_path"),
    Index("ix_file_metadata_channel_hash", "channel_id", "content_hash"),
)

# What a remote file looked like the last time it was fetched (size, etag, mtime), so an
# unchanged file is skipped from its listing alone, without downloading it.
source_files = Table(
    "source_files",
    metadata,
    Column("channel_id", String(200), primary_key=True),
    Column("source_key", Text, primary_key=True),
    Column("file_path", Text, nullable=False),
    Column("size", BigInteger, nullable=True),
    Column("etag", Text, nullable=True),
    _timestamp("mtime"),
    Column("content_hash", String(64), nullable=False),
    Column("job_id", String(200), nullable=False),
    _updated(),
)

# Retry settings: scope ``default``, or a channel_id that overrides it.
retry_settings = Table(
    "retry_settings",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("max_simple_retries", Integer, nullable=False, default=3),
    Column("max_heal_retries", Integer, nullable=False, default=2),
    Column("retry_delay_seconds", Float, nullable=False, default=30.0),
    _updated(),
)

# A message intake refused: sent to the dead-letter topic and counted here for
# ``amazoniax status`` (the reason is redacted; the message itself stays on the topic).
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", String(200), nullable=True),
    Column("channel_id", String(200), nullable=True),
    Column("error_class", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("topic", String(200), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    _created(),
)

# One record of a channel in the unified schema (``channel_records``), unique per source;
# ``raw`` is the record as read, ``content_hash`` tells whether a re-read changed it.
unified_items = Table(
    "unified_items",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("source_type", String(32), nullable=False),
    Column("source_name", String(200), nullable=False),
    Column("external_id", Text, nullable=False),
    Column("title", Text, nullable=True),
    Column("content", Text, nullable=True),
    Column("url", Text, nullable=True),
    _timestamp("published_at"),
    Column("raw", JSONB, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("job_id", String(200), nullable=False),
    Column("file_key", Text, nullable=False),
    _created(),
    _updated(),
    UniqueConstraint("source_type", "source_name", "external_id"),
    Index("ix_unified_items_source_name_id", "source_name", "id"),
    Index("ix_unified_items_published_at", "published_at"),
)

# A file whose records were loaded: written in the same transaction as its last batch, so an
# interrupted ``channel_records`` run resumes at the first file not listed here.
record_files = Table(
    "record_files",
    metadata,
    Column("channel_id", String(200), primary_key=True),
    Column("file_key", Text, primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("job_id", String(200), nullable=False),
    Column("extracted", Integer, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("processed_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)

# A channel's incremental cursor (timestamp, id or page), advanced only when a job succeeds.
channel_checkpoints = Table(
    "channel_checkpoints",
    metadata,
    Column("channel_id", String(200), primary_key=True),
    Column("cursor_type", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("job_id", String(200), nullable=False),
    _updated(),
)
