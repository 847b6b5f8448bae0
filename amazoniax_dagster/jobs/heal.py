"""After a failed html/api job: ask for heal mode, or hand the channel to a person.

a *site changed* or *fetcher code* failure fails the job and requests heal mode
(a new ``amazoniax_fetcher`` message with ``heal_mode=true`` for the same channel). Heal
attempts on one breakage are the channel's heal-mode jobs since its last success; once
``max_heal_retries`` are used up, or the job itself said it was exhausted, the job ends as
``requires_human_review`` and nothing more is requested. So does a channel whose last
``TRANSIENT_STREAK`` jobs all failed with transient errors (a site answering 500 for days).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.core.messages import FetcherJob, SourceType
from amazoniax_dagster.db import FetcherDB, JobRecord

log = logging.getLogger(__name__)

#: Failures that a regenerated fetcher may fix.
HEALABLE = frozenset({"site_changed", "fetcher_code", "validation_failed"})
WEB_SOURCES = frozenset({SourceType.HTML.value, SourceType.API.value})
#: A site that answers 5xx or times out on this many jobs in a row is not having a bad minute.
TRANSIENT_STREAK = 3


@dataclass(frozen=True)
class HealDecision:
    action: Literal["none", "heal", "human_review"]
    reason: str = ""
    heal_job_id: str | None = None
    attempt: int = 0
    max_attempts: int = 0


def decide(db: FetcherDB, job: JobRecord) -> HealDecision:
    """What a failed job leads to; pure reading, nothing is changed."""
    error_class = str(job.metadata.get("error_class", ""))
    if job.source_type not in WEB_SOURCES:
        return HealDecision("none")
    if error_class == "exhausted":
        return HealDecision("human_review", reason=job.message or "retries are used up")
    if error_class == "transient":
        recent = db.recent_outcomes(job.channel_id, TRANSIENT_STREAK)
        if len(recent) == TRANSIENT_STREAK and all(c == "transient" for _, c in recent):
            return HealDecision(
                "human_review",
                reason=f"the last {TRANSIENT_STREAK} jobs failed with transient errors",
            )
        return HealDecision("none")
    # A heal attempt that could not produce a fetcher at all counts as a failed attempt too.
    healable = HEALABLE | {"no_fetcher"} if job.flow == "heal" else HEALABLE
    if error_class not in healable:
        return HealDecision("none")
    used = db.heal_jobs_since_success(job.channel_id)
    allowed = db.retry_config(job.channel_id).max_heal_retries
    if used >= allowed:
        return HealDecision(
            "human_review",
            reason=f"{allowed} heal attempts did not fix the channel (max_heal_retries)",
            attempt=used,
            max_attempts=allowed,
        )
    root = job.job_id.split("-heal")[0]
    return HealDecision(
        "heal",
        reason=f"{error_class.replace('_', ' ')}: heal mode requested",
        heal_job_id=f"{root}-heal{used + 1}",
        attempt=used + 1,
        max_attempts=allowed,
    )


def after_failure(db: FetcherDB, bus: KafkaBus, topics: Topics, job_id: str) -> HealDecision:
    """Act on a failed job: publish the heal request, or mark it for human review. The job's
    record message says which, so the status message built from it tells the same."""
    job = db.get_job(job_id)
    if job is None or job.status not in ("failed", "requires_human_review"):
        return HealDecision("none")
    decision = decide(db, job)
    metadata = dict(job.metadata)
    if decision.action == "heal" and decision.heal_job_id:
        request = FetcherJob(
            job_id=decision.heal_job_id,
            channel_id=job.channel_id,
            source_type=SourceType(job.source_type),
            heal_mode=True,
        )
        bus.publish(
            topics.fetcher,
            request.model_dump_json(exclude_none=True).encode(),
            key=job.channel_id.encode(),
        )
        metadata |= {"heal_job_id": decision.heal_job_id, "heal_attempt": decision.attempt}
        message = (
            f"{job.message}; heal mode requested as job {decision.heal_job_id} "
            f"(attempt {decision.attempt} of {decision.max_attempts})"
        )
        db.finish_job(job_id, status="failed", message=message, metadata=metadata)
        log.info("job %s: heal mode requested as %s", job_id, decision.heal_job_id)
    elif decision.action == "human_review" and job.status != "requires_human_review":
        message = f"{job.message}; requires human review: {decision.reason}"
        db.finish_job(job_id, status="requires_human_review", message=message, metadata=metadata)
        log.warning("job %s requires human review: %s", job_id, decision.reason)
    return decision
