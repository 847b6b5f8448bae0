"""Run tag names. Tags carry job identity only: never a secret, never a config value."""

from __future__ import annotations

from collections.abc import Mapping

JOB_ID = "amazoniax/job_id"
CHANNEL_ID = "amazoniax/channel_id"
SOURCE_TYPE = "amazoniax/source_type"
FLOW = "amazoniax/flow"
#: the site (or FTP host) a run fetches from: the run queue limits concurrent runs per value
SITE = "amazoniax/site"
#: 2, 3, ... when a job_id produced again after a failed run starts a new attempt
ATTEMPT = "amazoniax/attempt"


def job_id_for_run(tags: Mapping[str, str], run_id: str) -> str:
    """The job_id a run works for: from its tags (Kafka), else made from the run id (UI)."""
    return tags.get(JOB_ID) or f"ui-{run_id}"
