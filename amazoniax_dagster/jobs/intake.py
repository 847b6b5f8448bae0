"""Taking in job messages: validate, dead-letter what cannot be handled, store what can.

Each record is handled completely (stored, or dead-lettered with a ``failed`` status) before
the next. No record can stall the topic: every record is read within a size and nesting limit
and checked inside a guard that turns any exception, even a bug of ours, into a dead letter.
Only our own infrastructure failing (the DB, Kafka) stops intake at that record, so the
caller's offsets never move past a message that was not handled.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from amazoniax_dagster.clients.kafka import Batch, KafkaBus, Record, Topics
from amazoniax_dagster.core.bounded_json import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    load_bounded_json,
)
from amazoniax_dagster.core.errors import (
    AmazoniaxError,
    ConfigError,
    InfrastructureError,
    IntakeBugError,
    MessageError,
    TransientError,
)
from amazoniax_dagster.core.messages import (
    DeadLetter,
    FetcherJob,
    JobStatus,
    SourceType,
    StatusMessage,
    parse_fetcher_job,
)
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import redact_mapping, redact_text
from amazoniax_dagster.core.sites import site_of
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.fetchers.routing import needs_generation

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Characters of a refused message kept in its dead letter (after redaction).
MAX_ORIGINAL_CHARS = 64 * 1024
_STOPS = (InfrastructureError, TransientError)


@dataclass(frozen=True)
class IntakeLimits:
    """What one message may be: its size in bytes and how deep its JSON nests."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH


@dataclass
class IntakeResult:
    accepted: list[FetcherJob] = field(default_factory=list)
    #: job_id -> site, for the jobs whose source has one (see sites.site_of)
    sites: dict[str, str] = field(default_factory=dict)
    #: web/API jobs whose site needs a fetcher generated first (new site, or heal mode)
    generate: set[str] = field(default_factory=set)
    #: the refused records, as sent to the dead-letter topic
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: partition -> next offset to read; covers exactly the handled records
    next_offsets: dict[int, int] = field(default_factory=dict)
    #: set when intake stopped early because our own infrastructure failed
    error: AmazoniaxError | None = None


def take_in(
    batch: Batch,
    *,
    db: FetcherDB,
    bus: KafkaBus,
    topics: Topics,
    policy: NetworkPolicy | None = None,
    limits: IntakeLimits | None = None,
) -> IntakeResult:
    """Handle a batch: validate every record, store the accepted jobs in one transaction, then
    dead-letter the refused ones in order. Offsets stop before the first record that could
    not be handled (our own DB or Kafka failing); storing again is harmless."""
    result = IntakeResult()
    if not batch.records:
        return result
    limits = limits or IntakeLimits()
    parsed = [(record, _parse(record, limits)) for record in batch.records]
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
        if not isinstance(job, FetcherJob):
            decisions.append((record, job, None))
            continue
        try:
            config = _config_for(job, known)
            check_addresses(job.source_type, config, policy or NetworkPolicy())
            site = site_of(job.source_type, config)
        except _STOPS as exc:
            return _stopped(result, record, exc, topics)
        except AmazoniaxError as exc:
            decisions.append((record, exc, None))
            continue
        except Exception as exc:  # a bug of ours must not hold up the messages behind it
            decisions.append((record, _bug(record, exc), None))
            continue
        if job.config is not None:
            known[job.channel_id] = (str(job.source_type), job.config)
        to_store.append(
            (job.job_id, job.channel_id, str(job.source_type), str(job.flow), job.config)
        )
        decisions.append((record, job, site))
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
                letter = dead_letter(record, outcome, bus=bus, topics=topics, db=db)
            except AmazoniaxError as exc:
                # Later jobs were stored already: stored again (harmlessly) next time.
                return _stopped(result, record, exc, topics)
            result.dead_letters.append(letter)
        result.next_offsets[record.partition] = record.offset + 1
    return result


def check_addresses(source_type: SourceType, config: dict[str, Any], policy: NetworkPolicy) -> None:
    """What the network policy can tell without DNS: schemes, metadata hosts, literal
    addresses. Host names are resolved and checked again when the job connects."""
    if source_type in (SourceType.HTML, SourceType.API):
        for key in ("url", "api_documentation_path"):
            value = config.get(key)
            if isinstance(value, str) and (key == "url" or "://" in value):
                policy.precheck_url(value)
    elif source_type is SourceType.S3:
        endpoint = config.get("endpoint_url")
        if isinstance(endpoint, str) and endpoint:
            policy.precheck_url(endpoint)
    elif source_type is SourceType.FTP:
        host, port = config.get("host"), config.get("port")
        if isinstance(host, str):
            policy.precheck_host(host, port if isinstance(port, int) else 21)


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


def _parse(record: Record, limits: IntakeLimits) -> FetcherJob | AmazoniaxError:
    if record.value is None:
        return MessageError("message has no value")
    try:
        return parse_fetcher_job(
            record.value, max_bytes=limits.max_bytes, max_depth=limits.max_depth
        )
    except AmazoniaxError as exc:
        return exc
    except Exception as exc:  # whatever a message contains, intake goes on
        return _bug(record, exc)


def _bug(record: Record, exc: Exception) -> IntakeBugError:
    log.exception("intake failed on the message at [%d]@%d", record.partition, record.offset)
    return IntakeBugError(f"intake failed on this message: {type(exc).__name__}")


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


def dead_letter(
    record: Record,
    exc: AmazoniaxError,
    *,
    bus: KafkaBus,
    topics: Topics,
    db: FetcherDB | None = None,
) -> DeadLetter:
    """Send the record to the dead-letter topic with the reason (secrets redacted), and a
    ``failed`` status; count it in the fetcher DB when one is given. Returns the letter."""
    job_id, channel_id = _identity(record.value)
    reason = redact_text(str(exc))
    letter = DeadLetter(
        reason=reason,
        error_class=exc.error_class,
        topic=topics.fetcher,
        partition=record.partition,
        offset=record.offset,
        job_id=job_id,
        channel_id=channel_id,
        original=redacted_original(record.value),
    )
    bus.publish(topics.dead_letter, letter.to_bytes(), key=record.key)
    status = StatusMessage(
        job_id=job_id,
        channel_id=channel_id,
        status=JobStatus.FAILED,
        message=f"message refused: {reason}",
    )
    bus.publish(topics.status, status.to_bytes(), key=(channel_id or "").encode() or None)
    if db is not None:
        db.record_dead_letter(
            job_id=job_id,
            channel_id=channel_id,
            error_class=exc.error_class,
            reason=reason,
            topic=topics.fetcher,
            partition=record.partition,
            offset=record.offset,
        )
    log.warning(
        "dead-lettered %s[%d]@%d (job %s): %s",
        topics.fetcher,
        record.partition,
        record.offset,
        job_id or "?",
        reason,
    )
    return letter


def redacted_original(value: bytes | None) -> str:
    """The refused message for debugging: secret-named fields masked (the channel store's
    rule), as text when it is not JSON, cut to :data:`MAX_ORIGINAL_CHARS` with a marker."""
    raw = value or b""
    try:
        data = load_bounded_json(raw, max_bytes=8 * DEFAULT_MAX_BYTES)
    except Exception:
        data = None
    if isinstance(data, dict | list):
        shown = redact_text(json.dumps(redact_mapping({"m": data})["m"], ensure_ascii=False))
    else:
        shown = redact_text(raw[: MAX_ORIGINAL_CHARS * 4].decode("utf-8", errors="replace"))
    if len(shown) > MAX_ORIGINAL_CHARS:
        cut = len(shown) - MAX_ORIGINAL_CHARS
        shown = f"{shown[:MAX_ORIGINAL_CHARS]}...[{cut:,} more characters cut]"
    return shown


def _identity(value: bytes | None) -> tuple[str | None, str | None]:
    """job_id and channel_id of a refused message, when they can be read at all."""
    try:
        data = load_bounded_json(value or b"")
    except Exception:
        return None, None
    if not isinstance(data, dict):
        return None, None

    def text(name: str) -> str | None:
        v = data.get(name)
        if not isinstance(v, str | int) or isinstance(v, bool):
            return None
        return _CONTROL.sub("\ufffd", str(v)[:200])  # shown and stored, never used as a key

    return text("job_id"), text("channel_id")
