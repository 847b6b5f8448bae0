"""Taking in job messages: validate, dead-letter what cannot be handled, store what can.

Each record is handled completely (stored, or dead-lettered with a ``failed`` status) before
the next; when our own infrastructure fails, intake stops at that record so the caller's offsets
never move past a message that was not handled.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from amazoniax_dagster.clients.kafka import Batch, KafkaBus, Record, Topics
from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, MessageError
from amazoniax_dagster.core.messages import (
    DeadLetter,
    FetcherJob,
    JobStatus,
    SourceType,
    StatusMessage,
    parse_fetcher_job,
)
from amazoniax_dagster.core.sites import site_of
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.fetchers.routing import needs_generation

log = logging.getLogger(__name__)


@dataclass
class IntakeResult:
    accepted: list[FetcherJob] = field(default_factory=list)
    #: job_id -> site, for the jobs whose source has one (see sites.site_of)
    sites: dict[str, str] = field(default_factory=dict)
    #: web/API jobs whose site needs a fetcher generated first (new site, or heal mode)
    generate: set[str] = field(default_factory=set)
    dead_lettered: int = 0
    #: partition -> next offset to read; covers exactly the handled records
    next_offsets: dict[int, int] = field(default_factory=dict)
    #: set when intake stopped early because our own infrastructure failed
    error: AmazoniaxError | None = None


def take_in(batch: Batch, *, db: FetcherDB, bus: KafkaBus, topics: Topics) -> IntakeResult:
    """Handle a batch: validate every record, store the accepted jobs in one transaction, then
    dead-letter the refused ones in order. Offsets stop before the first record that could
    not be handled (our own DB or Kafka failing); storing again is harmless."""
    result = IntakeResult()
    if not batch.records:
        return result
    parsed = [(record, _parse(record)) for record in batch.records]
    try:
        stored = db.get_channels(
            j.channel_id for _, j in parsed if isinstance(j, FetcherJob) and j.config is None
        )
    except AmazoniaxError as exc:
        return _stopped(result, batch.records[0], exc, topics)
    # Channel configs as the batch goes: stored ones, then each message's own, in order.
    known = {cid: (c.source_type, c.config) for cid, c in stored.items()}
    decisions: list[tuple[Record, FetcherJob | AmazoniaxError, str | None]] = []
    to_store: list[tuple[str, str, str, str, dict[str, Any] | None]] = []
    for record, job in parsed:
        if isinstance(job, FetcherJob):
            try:
                config = _config_for(job, known)
            except (MessageError, ConfigError) as exc:
                decisions.append((record, exc, None))
                continue
            if job.config is not None:
                known[job.channel_id] = (str(job.source_type), job.config)
            to_store.append(
                (job.job_id, job.channel_id, str(job.source_type), str(job.flow), job.config)
            )
            decisions.append((record, job, site_of(job.source_type, config)))
        else:
            decisions.append((record, job, None))
    try:
        db.store_jobs(to_store)
    except AmazoniaxError as exc:
        return _stopped(result, batch.records[0], exc, topics)
    configs = {job.job_id: config for job, config in _web_jobs(parsed, known)}
    for record, outcome, site in decisions:
        if isinstance(outcome, FetcherJob):
            result.accepted.append(outcome)
            if site:
                result.sites[outcome.job_id] = site
            if outcome.job_id in configs:
                try:
                    if needs_generation(db, outcome, configs[outcome.job_id]):
                        result.generate.add(outcome.job_id)
                except AmazoniaxError as exc:
                    return _stopped(result, record, exc, topics)
        else:
            try:
                dead_letter(record, outcome, bus=bus, topics=topics)
            except AmazoniaxError as exc:
                # Later jobs were stored already: stored again (harmlessly) next time.
                return _stopped(result, record, exc, topics)
            result.dead_lettered += 1
        result.next_offsets[record.partition] = record.offset + 1
    return result


def _web_jobs(
    parsed: list[tuple[Record, FetcherJob | AmazoniaxError]],
    known: dict[str, tuple[str, dict[str, Any]]],
) -> list[tuple[FetcherJob, dict[str, Any]]]:
    found = []
    for _, job in parsed:
        if isinstance(job, FetcherJob) and job.source_type in (SourceType.HTML, SourceType.API):
            config = (
                job.config if job.config is not None else known.get(job.channel_id, ("", {}))[1]
            )
            found.append((job, config))
    return found


def _parse(record: Record) -> FetcherJob | AmazoniaxError:
    if record.value is None:
        return MessageError("message has no value")
    try:
        return parse_fetcher_job(record.value)
    except MessageError as exc:
        return exc


def _config_for(job: FetcherJob, known: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The job's own config, else its channel's (stored, or from earlier in the batch)."""
    if job.config is not None:
        return job.config
    if job.channel_id not in known:
        raise ConfigError(
            f"channel {job.channel_id!r} has no stored config: send a message with a config first"
        )
    source_type, config = known[job.channel_id]
    if source_type != job.source_type:
        raise MessageError(
            f"message has no config and says source_type {job.source_type!s}, but the "
            f"stored channel {job.channel_id} is {source_type}"
        )
    return config


def _stopped(
    result: IntakeResult, record: Record, exc: AmazoniaxError, topics: Topics
) -> IntakeResult:
    log.error("stopped at %s[%d]@%d: %s", topics.fetcher, record.partition, record.offset, exc)
    result.error = exc
    return result


def dead_letter(record: Record, exc: AmazoniaxError, *, bus: KafkaBus, topics: Topics) -> None:
    """Send the record to the dead-letter topic with the reason, and a ``failed`` status."""
    job_id, channel_id = _identity(record.value)
    original = (record.value or b"").decode("utf-8", errors="replace")
    letter = DeadLetter(
        reason=str(exc),
        error_class=exc.error_class,
        topic=topics.fetcher,
        partition=record.partition,
        offset=record.offset,
        job_id=job_id,
        channel_id=channel_id,
        original=original,
    )
    bus.publish(topics.dead_letter, letter.to_bytes(), key=record.key)
    status = StatusMessage(
        job_id=job_id,
        channel_id=channel_id,
        status=JobStatus.FAILED,
        message=f"message refused: {exc}",
    )
    bus.publish(topics.status, status.to_bytes(), key=(channel_id or "").encode() or None)
    log.warning(
        "dead-lettered %s[%d]@%d (job %s): %s",
        topics.fetcher,
        record.partition,
        record.offset,
        job_id or "?",
        exc,
    )


def _identity(value: bytes | None) -> tuple[str | None, str | None]:
    """job_id and channel_id of a refused message, when they can be read at all."""
    try:
        data = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None

    def text(name: str) -> str | None:
        v = data.get(name)
        return str(v)[:200] if isinstance(v, str | int) and not isinstance(v, bool) else None

    return text("job_id"), text("channel_id")
