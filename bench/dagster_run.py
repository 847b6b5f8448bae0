"""One Dagster run in a fresh process, as the daemon's run launcher would start it.

``--job channel``: ``channel_files_job`` for ``--channel`` (partition) with the job's tags, as
``tests/integration/harness.py`` launches a run the sensor requested. ``--job noop``: a trivial
one-asset job (the floor a run costs in Dagster). ``--executor`` (``multiprocess`` or
``in_process``) applies to the no-op job, by run config; ``channel_files_job`` always runs with
its own in-process executor. Prints one JSON line with the timings.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import atexit  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import dagster as dg  # noqa: E402


@dg.asset
def noop_asset() -> dg.MaterializeResult[None]:
    # The exit hook ``channel_job.execute`` registers in the process that runs a job (no
    # collector walk over the heap at exit): the floor gets it too, so that the ratio of the
    # two runs compares the work of the step, not how fast its process exits.
    atexit.register(gc.freeze)
    return dg.MaterializeResult(metadata={"noop": True})


def noop_job_def() -> dg.JobDefinition:
    """Module-level, so ``dg.reconstructable`` can rebuild it in the step subprocess."""
    defs = dg.Definitions(
        assets=[noop_asset], jobs=[dg.define_asset_job("noop_job", selection=[noop_asset])]
    )
    # As ``amazoniax_dagster.definitions`` does once its code location is loaded: the floor's
    # process is tuned like the product's, so the ratio compares the steps.
    gc.freeze()
    return defs.resolve_job_def("noop_job")


def channel_files_job_def() -> dg.JobDefinition:
    from amazoniax_dagster.definitions import defs

    return defs.resolve_job_def("channel_files_job")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", choices=("channel", "noop"), required=True)
    parser.add_argument("--channel", default="")
    parser.add_argument("--job-id", default="")
    parser.add_argument("--executor", choices=("multiprocess", "in_process"), default="")
    args = parser.parse_args(argv)
    from amazoniax_dagster.core import run_tags

    t_imported = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        if args.job == "channel":
            instance.add_dynamic_partitions("channels", [args.channel])
            run_tags = {
                run_tags.JOB_ID: args.job_id,
                run_tags.CHANNEL_ID: args.channel,
                run_tags.SOURCE_TYPE: "s3",
                run_tags.FLOW: "existing",
                "dagster/partition": args.channel,
                "dagster/run_key": args.job_id,
            }
            target = dg.reconstructable(channel_files_job_def)
        else:
            run_tags = {}
            target = dg.reconstructable(noop_job_def)
        run_config: dict[str, Any] = (
            {"execution": {"config": {args.executor: {}}}}
            if args.executor and args.job == "noop"
            else {}
        )
        t_ready = time.perf_counter()
        result = dg.execute_job(target, instance=instance, tags=run_tags, run_config=run_config)
        t_done = time.perf_counter()
        ok = result.success
    print(
        json.dumps(
            {
                "ok": ok,
                "imports_s": round(t_imported - _T0, 3),
                "instance_s": round(t_ready - t_imported, 3),
                "execute_job_s": round(t_done - t_ready, 3),
            }
        ),
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
