"""One channel job through the Dagster-free core, as a run does minus Dagster.

Run in a fresh process per phase (``python -m bench.product_job --channel C --job J``) so that
process start and imports count, as they do for rclone. Reads the ``AMAZONIAX_*`` environment
of the local stack; prints one JSON line with the job's summary and where the time went.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from amazoniax_dagster.clients.kafka import KafkaBus  # noqa: E402
from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings  # noqa: E402
from amazoniax_dagster.core.netpolicy import NetworkPolicy  # noqa: E402
from amazoniax_dagster.core.sealing import SecretCipher  # noqa: E402
from amazoniax_dagster.db import FetcherDB  # noqa: E402
from amazoniax_dagster.jobs.channel_job import execute  # noqa: E402
from amazoniax_dagster.jobs.services import JobRequest, JobServices  # noqa: E402


def build_services(max_workers: int) -> JobServices:
    env = os.environ
    return JobServices(
        db=FetcherDB(env["AMAZONIAX_DATABASE_URL"], SecretCipher(env["AMAZONIAX_SECRET_KEY"])),
        output=OutputBucket(
            OutputSettings(
                bucket=env["AMAZONIAX_OUTPUT_BUCKET"],
                endpoint_url=env["AMAZONIAX_S3_ENDPOINT_URL"],
                access_key_id=env["AMAZONIAX_S3_ACCESS_KEY_ID"],
                secret_access_key=env["AMAZONIAX_S3_SECRET_ACCESS_KEY"],
                region=env["AMAZONIAX_S3_REGION"],
            ),
            max_connections=max_workers * 2,  # as OutputBucketResource is asked in a run
        ),
        bus=KafkaBus(env["AMAZONIAX_KAFKA_BOOTSTRAP"]),
        policy=NetworkPolicy.from_env(env.get("AMAZONIAX_ALLOWED_NETWORKS", "")),
        max_workers=max_workers,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--max-workers", type=int, default=16, help="FetchSettings default")
    args = parser.parse_args(argv)
    t_imported = time.perf_counter()
    services = build_services(args.max_workers)
    t_services = time.perf_counter()
    outcome = execute(JobRequest(job_id=args.job, channel_id=args.channel), services)
    t_done = time.perf_counter()
    services.output.close()
    services.bus.close()
    services.db.close()
    report = {
        "ok": outcome.ok,
        "error": outcome.error_text,
        "summary": outcome.result.summary() if outcome.result else None,
        "imports_s": round(t_imported - _T0, 3),
        "services_s": round(t_services - t_imported, 3),
        "execute_s": round(t_done - t_services, 3),
        "engine_s": outcome.result.duration_seconds if outcome.result else None,
    }
    print(json.dumps(report), flush=True)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
