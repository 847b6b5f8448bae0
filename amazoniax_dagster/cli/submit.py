"""Batch submission (``amazoniax submit``): validate a batch of jobs, send them to
``amazoniax_fetcher`` at most ``max_workers`` in flight, and follow them on ``amazoniax_status``.

A batch file is JSON, in one of two shapes::

    [ {"job_id": ..., "channel_id": ..., "source_type": ..., "config": {...}}, ... ]

    {"description": "...", "jobs": [ {"job_id": "j1", "service_id": "s3_financial_data"}, ... ]}

The second is the batch-file shape: ``service_id`` is the channel, whose source type (and config)
come from the channel registry (``amazoniax channels import``). A missing ``job_id`` becomes
``batch-<UTC timestamp>-<n>``. Every entry is validated with :func:`parse_fetcher_job` before
anything is sent; the first send happens only when the whole batch is valid.

A job is *waiting* (not sent yet: ``max_workers`` are in flight), *queued* (sent, not running),
*running* (the fetcher DB says so), or ended with the status it was reported on
``amazoniax_status``. The loop in :func:`submit_jobs` works on a small :class:`SubmitBackend`,
so that it is tested without Kafka.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, MessageError
from amazoniax_dagster.core.messages import FetcherJob, JobStatus, parse_fetcher_job
from amazoniax_dagster.core.redaction import Redactor, collect_secret_values

log = logging.getLogger(__name__)

WAITING = "waiting"
QUEUED = "queued"
RUNNING = "running"
TIMED_OUT = "timed_out"
TERMINAL = frozenset(s.value for s in JobStatus)

MAX_READ_FAILURES = 3  # consecutive failed reads of the status topic before giving up

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_TIMEOUT = 3


# --------------------------------------------------------------------------- parsing


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


# --------------------------------------------------------------------------- following


@dataclass(frozen=True)
class StatusUpdate:
    """One ``amazoniax_status`` message, as much of it as the summary shows."""

    job_id: str
    status: str
    message: str = ""
    files: int | None = None
    seconds: float | None = None

    @classmethod
    def from_message(cls, value: bytes | None) -> StatusUpdate | None:
        try:
            data = json.loads(value or b"")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), str):
            return None
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        assert isinstance(metadata, dict)
        files = metadata.get("files_processed")
        seconds = metadata.get("execution_time_seconds")
        return cls(
            job_id=data["job_id"],
            status=str(data.get("status") or "failed"),
            message=str(data.get("message") or ""),
            files=int(files) if isinstance(files, int | float) else None,
            seconds=float(seconds) if isinstance(seconds, int | float) else None,
        )


class SubmitBackend(Protocol):
    def send(self, job: PreparedJob) -> None:
        """Put the job's message on ``amazoniax_fetcher`` (acknowledged by the broker)."""

    def poll_statuses(self) -> list[StatusUpdate]:
        """Status messages that arrived since the last call (or since the backend started)."""

    def job_states(self, job_ids: Collection[str]) -> Mapping[str, str]:
        """The fetcher DB's status of the given jobs (empty when there is no DB)."""


@dataclass
class JobProgress:
    job_id: str
    channel_id: str
    state: str = WAITING
    files: int | None = None
    seconds: float | None = None
    message: str = ""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def in_flight(self) -> bool:
        return self.state in (QUEUED, RUNNING)


@dataclass(frozen=True)
class Counts:
    total: int
    submitted: int
    waiting: int
    queued: int
    running: int
    succeeded: int
    failed: int

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


@dataclass
class SubmitReport:
    jobs: list[JobProgress]
    waited: bool
    timed_out: bool = False
    #: why sending or following stopped early (Kafka or the DB failed), if it did
    error: str | None = None

    def counts(self) -> Counts:
        return count(self.jobs)

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_FAILED
        if self.timed_out:
            return EXIT_TIMEOUT
        if any(j.state in TERMINAL and j.state != JobStatus.SUCCESS for j in self.jobs):
            return EXIT_FAILED
        return EXIT_OK


def count(jobs: Sequence[JobProgress]) -> Counts:
    states = [j.state for j in jobs]
    return Counts(
        total=len(jobs),
        submitted=sum(s != WAITING for s in states),
        waiting=states.count(WAITING),
        queued=states.count(QUEUED),
        running=states.count(RUNNING),
        succeeded=states.count(JobStatus.SUCCESS),
        failed=sum(s in TERMINAL and s != JobStatus.SUCCESS for s in states),
    )


def submit_jobs(
    jobs: Sequence[PreparedJob],
    backend: SubmitBackend,
    *,
    max_workers: int = 20,
    wait: bool = True,
    timeout: float | None = None,
    on_update: Callable[[Sequence[JobProgress]], None] | None = None,
    poll_interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SubmitReport:
    """Send ``jobs`` keeping at most ``max_workers`` in flight; with ``wait``, follow them until
    each has a status (or ``timeout`` seconds passed). Without ``wait`` it returns once the
    last job is sent, which takes waiting only when there are more jobs than ``max_workers``."""
    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    progress = {j.job_id: JobProgress(j.job_id, j.channel_id) for j in jobs}
    ordered = list(progress.values())
    pending = deque(jobs)
    deadline = None if timeout is None else clock() + timeout
    report = SubmitReport(ordered, waited=wait)

    read_failures = 0

    def notify() -> None:
        if on_update is not None:
            on_update(ordered)

    while True:
        in_flight = sum(p.in_flight for p in ordered)
        try:
            while pending and in_flight < max_workers:
                item = pending.popleft()
                backend.send(item)
                progress[item.job_id].state = QUEUED
                in_flight += 1
        except AmazoniaxError as exc:
            report.error = f"stopped sending: {exc}"
            notify()
            return report
        notify()
        if not pending and (not wait or in_flight == 0):
            return report
        if deadline is not None and clock() >= deadline:
            report.timed_out = True
            for p in ordered:
                if p.state == WAITING:
                    p.message = "not sent: the timeout came first"
                elif not p.done:
                    p.message = p.message or f"no status within {timeout:g} s (was {p.state})"
            return report
        try:
            changed = _apply_statuses(progress, backend.poll_statuses())
            read_failures = 0
        except AmazoniaxError as exc:
            read_failures += 1
            if read_failures >= MAX_READ_FAILURES:
                report.error = f"stopped following the jobs: {exc}"
                return report
            log.warning("cannot read statuses (will retry): %s", exc)
            changed = False
        flying = [p.job_id for p in ordered if p.in_flight]
        if flying:
            states = backend.job_states(flying)
            for job_id in flying:
                p = progress[job_id]
                # Only forward: a job seen running stays running until its status arrives, even
                # when the DB has already moved it on (or could not be read this time).
                if states.get(job_id) == RUNNING and p.state != RUNNING:
                    p.state, changed = RUNNING, True
        if not changed:
            sleep(poll_interval)


def _apply_statuses(progress: dict[str, JobProgress], updates: Iterable[StatusUpdate]) -> bool:
    changed = False
    for update in updates:
        p = progress.get(update.job_id)
        if p is None or p.state == WAITING:
            continue  # another job's status
        p.state = update.status if update.status in TERMINAL else JobStatus.FAILED.value
        p.files, p.seconds, p.message = update.files, update.seconds, update.message
        changed = True
    return changed


# --------------------------------------------------------------------------- the real backend


class KafkaSubmitBackend:
    """Kafka for sending and for status messages; the fetcher DB (optional) for ``running``.

    The status topic is read from where it ends when the backend starts. tansu's ListOffsets
    is unreliable, so the end is found by reading the topic to its end once.
    """

    def __init__(
        self,
        bus: Any,
        *,
        fetcher_topic: str,
        status_topic: str,
        job_states: Callable[[Collection[str]], Mapping[str, str]] | None = None,
        read_seconds: float = 2.0,
    ) -> None:
        self._bus = bus
        self._fetcher_topic = fetcher_topic
        self._status_topic = status_topic
        self._job_states = job_states
        self._read_seconds = read_seconds
        self._positions: dict[int, int] = {}

    def start(self) -> None:
        """Remember where the status topic ends now: only later statuses are ours."""
        batch = self._bus.read(
            self._status_topic, {}, max_records=1_000_000, max_seconds=60, idle_ms=300
        )
        self._positions = dict(batch.next_offsets)

    def send(self, job: PreparedJob) -> None:
        self._bus.publish(self._fetcher_topic, job.payload, key=job.channel_id.encode())

    def poll_statuses(self) -> list[StatusUpdate]:
        batch = self._bus.read(
            self._status_topic,
            self._positions,
            max_records=1000,
            max_seconds=self._read_seconds,
            idle_ms=200,
        )
        self._positions.update(batch.next_offsets)
        updates = []
        for record in batch.records:
            update = StatusUpdate.from_message(record.value)
            if update is not None:
                updates.append(update)
        return updates

    def job_states(self, job_ids: Collection[str]) -> Mapping[str, str]:
        if self._job_states is None:
            return {}
        try:
            return self._job_states(job_ids)
        except AmazoniaxError as exc:  # the DB only adds "running"; Kafka decides the end
            log.warning("cannot read job states from the fetcher DB: %s", exc)
            return {}


__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "BatchError",
    "Counts",
    "EntryError",
    "JobProgress",
    "KafkaSubmitBackend",
    "PreparedJob",
    "StatusUpdate",
    "SubmitBackend",
    "SubmitReport",
    "batch_entries",
    "batch_redactor",
    "count",
    "prepare_batch",
    "read_batch_file",
    "submit_jobs",
]
