"""The ``amazoniax_status`` message for a finished run, built from what the job recorded.

A run that crashed (its process died, or it failed before recording anything) has no result
in the DB: the status is built from what Dagster saw, and the job is marked failed in the DB
so that history stays consistent.
"""

from __future__ import annotations

import logging
from typing import Literal

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.core.messages import JobStatus, StatusMessage, StatusMetadata
from amazoniax_dagster.db import FetcherDB

log = logging.getLogger(__name__)

RunOutcome = Literal["success", "failure", "canceled"]


def build_status(
    db: FetcherDB,
    *,
    job_id: str,
    channel_id: str,
    outcome: RunOutcome,
    run_message: str,
    run_seconds: float | None,
) -> StatusMessage:
    record = db.get_job(job_id)
    recorded = dict(record.metadata) if record else {}
    seconds = run_seconds
    if record and record.started_at and record.finished_at:
        seconds = (record.finished_at - record.started_at).total_seconds()

    if outcome == "success" and record and record.status == "success":
        status, message = JobStatus.SUCCESS, record.message or "job completed"
    elif outcome == "failure" and record and record.status == "failed" and record.message:
        status, message = JobStatus.FAILED, record.message
    elif outcome == "failure" and record and record.status == "requires_human_review":
        status, message = JobStatus.REQUIRES_HUMAN_REVIEW, record.message or "requires review"
    elif outcome == "canceled":
        status, message = JobStatus.FAILED, "run was canceled before the job finished"
        recorded["error_class"] = "canceled"
        db.finish_job(job_id, status="canceled", message=message, metadata=recorded)
    else:
        # Crashed, or failed before the job could record anything.
        status, message = JobStatus.FAILED, f"run failed: {run_message}"
        recorded.setdefault("error_class", "crashed")
        db.finish_job(job_id, status="failed", message=message, metadata=recorded)

    metadata = StatusMetadata(
        files_processed=int(recorded.pop("files_processed", 0) or 0),
        execution_time_seconds=round(seconds or 0.0, 3),
        **recorded,
    )
    return StatusMessage(
        job_id=job_id, channel_id=channel_id, status=status, message=message, metadata=metadata
    )


def publish_status(status: StatusMessage, *, db: FetcherDB, bus: KafkaBus, topics: Topics) -> None:
    bus.publish(topics.status, status.to_bytes(), key=(status.channel_id or "").encode() or None)
    if status.job_id:
        db.mark_published(status.job_id, status=True)
    log.info("status %s for job %s: %s", status.status, status.job_id, status.message)
