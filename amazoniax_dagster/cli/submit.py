"""Batch submission (``amazoniax submit``): validate a batch of jobs, send them to
``amazoniax_fetcher`` at most ``max_workers`` in flight, and follow them on ``amazoniax_status``.

The batch file is read and validated by :mod:`amazoniax_dagster.cli.batch_file`.

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
from dataclasses import dataclass
from typing import Any, Protocol

from amazoniax_dagster.cli.batch_file import PreparedJob
from amazoniax_dagster.core.errors import AmazoniaxError
from amazoniax_dagster.core.messages import JobStatus

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
                # Never back from running to queued: the DB can lag or be unreadable.
                running = states.get(job_id) == RUNNING or p.state == RUNNING
                state = RUNNING if running else QUEUED
                if state != p.state:
                    p.state, changed = state, True
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
    "Counts",
    "JobProgress",
    "KafkaSubmitBackend",
    "PreparedJob",
    "StatusUpdate",
    "SubmitBackend",
    "SubmitReport",
    "count",
    "submit_jobs",
]
