"""Batch files for ``amazoniax submit``: read, validated entry by entry, and turned into jobs.

A batch file is JSON, in one of two shapes::

    [ {"job_id": ..., "channel_id": ..., "source_type": ..., "config": {...}}, ... ]

    {"description": "...", "jobs": [ {"job_id": "j1", "service_id": "s3_financial_data"}, ... ]}

The second is the batch-file shape: ``service_id`` is the channel, whose source type (and config)
come from the channel registry (``amazoniax channels import``). A missing ``job_id`` becomes
``batch-<UTC timestamp>-<n>``. Every entry is validated with :func:`parse_fetcher_job` before
anything is sent; the first send happens only when the whole batch is valid.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amazoniax_dagster.core.errors import ConfigError, MessageError
from amazoniax_dagster.core.messages import FetcherJob, parse_fetcher_job
from amazoniax_dagster.core.redaction import Redactor, collect_secret_values


@dataclass(frozen=True)
class EntryError:
    index: int
    reason: str

    def __str__(self) -> str:
        return f"job #{self.index + 1}: {self.reason}"  # counted from 1, as people count


class BatchError(ConfigError):
    """The batch cannot be sent as it is; ``errors`` names each bad entry."""

    def __init__(self, errors: Sequence[EntryError], summary: str | None = None) -> None:
        self.errors = list(errors)
        text = summary or f"{len(self.errors)} invalid job(s) in the batch"
        super().__init__("; ".join([text, *map(str, self.errors)]))


@dataclass(frozen=True)
class PreparedJob:
    """A validated job and the message bytes that will be sent for it."""

    job: FetcherJob
    payload: bytes = field(repr=False)

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def channel_id(self) -> str:
        return self.job.channel_id


#: channel_id -> source_type of the stored channels among the given ones
SourceTypeLookup = Callable[[Iterable[str]], Mapping[str, str]]
#: job_ids among the given ones the fetcher already knows
KnownJobsLookup = Callable[[Iterable[str]], Collection[str]]


def read_batch_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BatchError([], f"cannot read {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchError([], f"{path} is not valid JSON: {exc}") from exc


def batch_entries(data: Any) -> list[Any]:
    """The job entries of either batch shape."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get("jobs"), list):
        jobs: list[Any] = data["jobs"]
        return jobs
    raise BatchError([], 'a batch is a JSON list of job messages or an object with a "jobs" list')


def prepare_batch(
    data: Any,
    *,
    source_types: SourceTypeLookup | None = None,
    known_jobs: KnownJobsLookup | None = None,
    now: datetime | None = None,
) -> list[PreparedJob]:
    """Validate every entry and build its message; BatchError listing every bad entry.

    ``source_types`` (the fetcher DB's channels) fills in a missing ``source_type`` and checks
    that config-less jobs name a stored channel; ``known_jobs`` refuses job_ids already used
    (a job_id runs once: the sensor would skip the message).
    """
    entries = batch_entries(data)
    if not entries:
        raise BatchError([], "the batch has no jobs")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    width = max(4, len(str(len(entries))))
    errors: list[EntryError] = []
    normalized: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            errors.append(EntryError(index, f"must be a JSON object, got {type(entry).__name__}"))
            continue
        message = dict(entry)
        if not message.get("channel_id") and message.get("service_id"):
            message["channel_id"] = message.pop("service_id")
        if not message.get("job_id"):
            message["job_id"] = f"batch-{stamp}-{index + 1:0{width}d}"
        normalized[index] = message

    stored: Mapping[str, str] = {}
    lookup_ids = [
        str(m["channel_id"])
        for m in normalized.values()
        if isinstance(m.get("channel_id"), str)
        and (not m.get("source_type") or not m.get("config"))
    ]
    if source_types is not None and lookup_ids:
        stored = source_types(lookup_ids)

    prepared: dict[int, PreparedJob] = {}
    for index, message in normalized.items():
        channel_id = message.get("channel_id")
        known_type = stored.get(channel_id) if isinstance(channel_id, str) else None
        if message.get("config") is None and source_types is not None and known_type is None:
            errors.append(
                EntryError(
                    index,
                    f"channel {channel_id!r} has no stored config and the job gives none "
                    "(add a config, or register it with `amazoniax channels import`)",
                )
            )
            continue
        if not message.get("source_type") and known_type is not None:
            message["source_type"] = known_type
        elif (
            message.get("config") is None
            and known_type is not None
            and message.get("source_type") != known_type
        ):
            errors.append(
                EntryError(
                    index,
                    f"source_type {message.get('source_type')!r} does not match the stored "
                    f"channel {channel_id!r} ({known_type})",
                )
            )
            continue
        payload = json.dumps(message, separators=(",", ":")).encode()
        try:
            job = parse_fetcher_job(payload)
        except MessageError as exc:
            errors.append(EntryError(index, str(exc)))
            continue
        prepared[index] = PreparedJob(job, payload)

    seen: dict[str, int] = {}
    for index, item in sorted(prepared.items()):
        if item.job_id in seen:
            errors.append(
                EntryError(index, f"job_id {item.job_id!r} repeats job #{seen[item.job_id] + 1}")
            )
        else:
            seen[item.job_id] = index
    if known_jobs is not None and seen:
        for job_id in sorted(known_jobs(seen)):
            errors.append(
                EntryError(
                    seen[job_id],
                    f"job_id {job_id!r} was already submitted (a job_id runs once)",
                )
            )
    if errors:
        raise BatchError(sorted(errors, key=lambda e: e.index))
    return [prepared[i] for i in sorted(prepared)]


def batch_redactor(jobs: Iterable[PreparedJob]) -> Redactor:
    """A redactor that knows every secret of the batch's configs."""
    secrets: set[str] = set()
    for item in jobs:
        if item.job.config:
            secrets |= collect_secret_values(item.job.config)
    return Redactor(secrets)


__all__ = [
    "BatchError",
    "EntryError",
    "PreparedJob",
    "batch_entries",
    "batch_redactor",
    "prepare_batch",
    "read_batch_file",
]
