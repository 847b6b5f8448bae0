"""Taking in job messages: validate, dead-letter what cannot be handled, store what can.

Each record is handled completely (stored, or dead-lettered with a ``failed`` status) before
the next; when our own infrastructure fails, intake stops at that record so the caller's offsets
never move past a message that was not handled.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.errors import AmazoniaxError, ConfigError, MessageError
from amazoniax_dagster.kafka import Batch, KafkaBus, Record, Topics
from amazoniax_dagster.messages import (
    DeadLetter,
    FetcherJob,
    JobStatus,
    StatusMessage,
    parse_fetcher_job,
)
from amazoniax_dagster.sites import site_of

log = logging.getLogger(__name__)


@dataclass
class IntakeResult:
    accepted: list[FetcherJob] = field(default_factory=list)
    #: job_id -> site, for the jobs whose source has one (see sites.site_of)
    sites: dict[str, str] = field(default_factory=dict)
    dead_lettered: int = 0
    #: partition -> next offset to read; covers exactly the handled records
    next_offsets: dict[int, int] = field(default_factory=dict)
    #: set when intake stopped early because our own infrastructure failed
    error: AmazoniaxError | None = None


def take_in(batch: Batch, *, db: FetcherDB, bus: KafkaBus, topics: Topics) -> IntakeResult:
    result = IntakeResult()
    for record in batch.records:
        try:
            try:
                job, site = accept(record, db)
                result.accepted.append(job)
                if site:
                    result.sites[job.job_id] = site
            except (MessageError, ConfigError) as exc:
                dead_letter(record, exc, bus=bus, topics=topics)
                result.dead_lettered += 1
        except AmazoniaxError as exc:
            log.error(
                "stopped at %s[%d]@%d: %s", topics.fetcher, record.partition, record.offset, exc
            )
            result.error = exc
            break
        result.next_offsets[record.partition] = record.offset + 1
    return result


def accept(record: Record, db: FetcherDB) -> tuple[FetcherJob, str | None]:
    """Validate one record and store its channel config and job; MessageError if it cannot be.
    Returns the job and the site it fetches from."""
    if record.value is None:
        raise MessageError("message has no value")
    job = parse_fetcher_job(record.value)
    if job.config is not None:
        db.save_channel(job.channel_id, job.source_type, job.config)
        config = job.config
    else:
        stored = db.get_channel(job.channel_id)  # ConfigError when unknown
        if stored.source_type != job.source_type:
            raise MessageError(
                f"message has no config and says source_type {job.source_type!s}, but the "
                f"stored channel {job.channel_id} is {stored.source_type}"
            )
        config = stored.config
    db.queue_job(
        job_id=job.job_id,
        channel_id=job.channel_id,
        source_type=job.source_type,
        flow=job.flow,
        config=job.config,
    )
    return job, site_of(job.source_type, config)


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
