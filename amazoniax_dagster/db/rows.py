"""What the fetcher DB hands back: small frozen rows, no SQL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class StoredChannel:
    channel_id: str
    source_type: str
    config: dict[str, Any]  # unsealed: holds secrets, never log it


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    channel_id: str
    source_type: str
    flow: str
    status: str
    message: str | None
    metadata: dict[str, Any]
    s3_output_path: str | None
    dagster_run_id: str | None
    parsers_published: bool
    status_published: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class SourceIdentity:
    """How a remote file looked in its listing when it was last fetched."""

    source_key: str
    file_path: str
    size: int | None
    etag: str | None
    mtime: datetime | None
    content_hash: str


@dataclass(frozen=True)
class DeliveredFile:
    file_path: str
    s3_key: str
    content_hash: str
    file_size: int
    classification: str  # "new" | "updated"
    validation: str | None = None  # "valid" | "invalid" | "skipped"; None when not checked
    quarantined: bool = False


@dataclass
class ChannelHistory:
    """What a channel has delivered before: enough to classify a file without more queries."""

    latest_hash_by_path: dict[str, str] = field(default_factory=dict)
    delivered_hashes: set[str] = field(default_factory=set)
    identities: dict[str, SourceIdentity] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveredOutput:
    file_path: str
    s3_key: str
    size: int


@dataclass(frozen=True)
class RecentOutputs:
    file_counts: list[int]  # files each successful job fetched, newest first
    files: list[DeliveredOutput]  # files delivered (new or updated), newest first
    record_counts: list[int] = field(default_factory=list)  # records seen, where known


def _fetched_count(metadata: Mapping[str, Any]) -> int:
    return sum(int(metadata.get(k, 0) or 0) for k in ("new", "updated", "duplicate", "unchanged"))


@dataclass(frozen=True)
class ChannelSummary:
    """A stored channel without its config (safe to show)."""

    channel_id: str
    source_type: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ChannelHost:
    """Where a file channel's server is (FTP/FTPS/SFTP): no credentials, only the address."""

    channel_id: str
    host: str
    port: int | None
    protocol: str


@dataclass(frozen=True)
class JobFailure:
    job_id: str
    channel_id: str
    status: str
    message: str | None
    at: datetime


@dataclass(frozen=True)
class RetryConfig:
    max_simple_retries: int = 3
    max_heal_retries: int = 2
    retry_delay_seconds: float = 30.0


@dataclass(frozen=True)
class DeadLetterRow:
    """A message intake refused (see ``jobs/intake.py``)."""

    job_id: str | None
    channel_id: str | None
    error_class: str
    reason: str
    at: datetime
