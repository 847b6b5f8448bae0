"""Tables of the fetcher DB (seed 000, extended). The schema itself is owned by the Alembic
migrations in ``migrations/versions``; a test keeps these models and the migrations in step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class FetcherDetails(Base):
    """One version of a site's fetcher (``<domain>_fetcher_vN``), a folder in the fetchers repo.

    ``status``: candidate (allocated, not yet in Git) -> published (committed on main, may be
    mapped) or rejected (failed validation, kept on a candidates/ branch). ``kind``: recipe,
    browser or python.
    """

    __tablename__ = "fetcher_details"
    __table_args__ = (
        UniqueConstraint("structure_id", "version"),
        CheckConstraint("kind IN ('recipe', 'browser', 'python')", name="ck_fetcher_details_kind"),
        CheckConstraint(
            "status IN ('candidate', 'published', 'rejected')", name="ck_fetcher_details_status"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    structure_id: Mapped[str] = mapped_column(String(255), nullable=False)
    fetcher_name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    git_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provenance_json: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ChannelFetcherDetails(Base):
    """Which fetcher version a channel runs, and ran: a remap closes the current row
    (``replaced_at``) and adds a new one, so at most one row per channel is current."""

    __tablename__ = "channel_fetcher_details"
    __table_args__ = (
        Index(
            "uq_channel_fetcher_details_current",
            "channel_id",
            unique=True,
            postgresql_where=text("replaced_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    fetcher_id: Mapped[int] = mapped_column(
        ForeignKey("fetcher_details.id"), nullable=False, index=True
    )
    # Sealed like the channel store: secret-named fields are encrypted.
    config_json: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()
    replaced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Channel(Base):
    """The latest config of a channel; secret fields are sealed (encrypted) in ``config_json``."""

    __tablename__ = "channels"

    channel_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_type: Mapped[str] = mapped_column(String(16), nullable=False)
    config_json: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class JobRun(Base):
    """One job (one Kafka message or one UI launch) and how it ended."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    channel_id: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    source_type: Mapped[str] = mapped_column(String(16), nullable=False)
    flow: Mapped[str] = mapped_column(String(16), nullable=False)
    # queued -> running -> success | failed | canceled | requires_human_review
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    # The job's own config snapshot (sealed), so a later message for the same channel
    # cannot change what this job fetches.
    config_json: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    dagster_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    s3_output_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    parsers_published: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status_published: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FileMetadata(Base):
    """A file a job delivered (new or updated) to the output bucket."""

    __tablename__ = "file_metadata"
    __table_args__ = (
        UniqueConstraint("job_id", "file_path"),
        Index("ix_file_metadata_channel_path", "channel_id", "file_path"),
        Index("ix_file_metadata_channel_hash", "channel_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(200), nullable=False)
    channel_id: Mapped[str] = mapped_column(String(200), nullable=False)
    file_path: Mapped[str] = mapped_column(Text, nullable=False)
    s3_key: Mapped[str] = mapped_column(Text, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    file_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    classification: Mapped[str] = mapped_column(String(16), nullable=False)
    # The format check's verdict (valid | invalid | skipped), None when not checked.
    validation: Mapped[str | None] = mapped_column(String(16), nullable=True)
    quarantined: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    created_at: Mapped[datetime] = _created()


class SourceFile(Base):
    """What a remote file looked like the last time it was fetched (size, etag, mtime), so an
    unchanged file is skipped from its listing alone, without downloading it."""

    __tablename__ = "source_files"

    channel_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_key: Mapped[str] = mapped_column(Text, primary_key=True)
    file_path: Mapped[str] = mapped_column(Text, nullable=False)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    etag: Mapped[str | None] = mapped_column(Text, nullable=True)
    mtime: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    job_id: Mapped[str] = mapped_column(String(200), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class RetrySettings(Base):
    """Retry settings (seed 000): scope ``default``, or a channel_id that overrides it."""

    __tablename__ = "retry_settings"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    max_simple_retries: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    max_heal_retries: Mapped[int] = mapped_column(Integer, nullable=False, default=2)
    retry_delay_seconds: Mapped[float] = mapped_column(Float, nullable=False, default=30.0)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )
