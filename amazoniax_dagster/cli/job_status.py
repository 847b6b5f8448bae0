"""``amazoniax status``: where the fetcher's jobs stand, from the fetcher DB's ``job_runs``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from amazoniax_dagster.core.redaction import Redactor
from amazoniax_dagster.db.repository import FetcherDB
from amazoniax_dagster.db.rows import DeadLetterRow, JobFailure

#: the states every report shows, in this order (others, e.g. ``canceled``, follow)
STATES = ("queued", "running", "success", "failed", "requires_human_review")


@dataclass(frozen=True)
class JobsOverview:
    counts: dict[str, int]
    recent_failures: list[JobFailure]
    #: messages intake refused (dead-lettered), in all, and the latest ones
    dead_letters: int = 0
    recent_dead_letters: list[DeadLetterRow] = field(default_factory=list)

    @property
    def queue_size(self) -> int:
        """Jobs the sensor accepted that no run has started yet."""
        return self.counts.get("queued", 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        redact = Redactor()
        return {
            "counts": self.counts,
            "total": self.total,
            "queue_size": self.queue_size,
            "recent_failures": [
                {
                    "job_id": f.job_id,
                    "channel_id": f.channel_id,
                    "status": f.status,
                    "time": f.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "message": redact(f.message or ""),
                }
                for f in self.recent_failures
            ],
            "dead_letters": self.dead_letters,
            "recent_dead_letters": [
                {
                    "job_id": d.job_id,
                    "channel_id": d.channel_id,
                    "error_class": d.error_class,
                    "time": d.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "reason": redact(d.reason),
                }
                for d in self.recent_dead_letters
            ],
        }


def jobs_overview(db: FetcherDB, *, failures: int = 10) -> JobsOverview:
    found = db.job_status_counts()
    counts = {state: found.pop(state, 0) for state in STATES}
    counts.update(sorted(found.items()))
    dead, recent_dead = db.recent_dead_letters(failures)
    return JobsOverview(counts, db.recent_failures(failures), dead, recent_dead)


__all__ = ["STATES", "JobsOverview", "jobs_overview"]
