"""After a run that did not finish: remove what it uploaded but never recorded.

A job uploads first, then records its files in one DB transaction, then announces them. A run
killed before the record (SIGKILL, a lost pod) leaves objects that no history knows and no
parser was told about. They are removed when the run is reported failed or canceled (the
run-status sensors) and again when the job starts its next attempt, so the output bucket
holds exactly the files the fetcher DB records. Job logs (``_logs/``) are kept.
"""

from __future__ import annotations

import logging

from amazoniax_dagster.clients.output_bucket import OutputBucket
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.sync.wording import count

log = logging.getLogger(__name__)


def remove_unrecorded_uploads(
    output: OutputBucket, db: FetcherDB, channel_id: str, job_id: str
) -> list[str]:
    """Delete the job's objects that its DB record does not list; return their keys."""
    recorded = {f.s3_key for f in db.job_files(job_id)}
    folder, quarantine = output.job_prefixes(channel_id, job_id)
    found = output.list_keys(folder) + output.list_keys(quarantine)
    stray = [key for key in found if key not in recorded]
    if stray:
        output.delete(stray)
        log.warning(
            "job %s: removed %s that no finished run recorded",
            job_id,
            count(len(stray), "uploaded file"),
        )
    return stray
