"""Run overhead: a channel run with nothing new vs a no-op asset, both as whole Dagster runs.

    uv run python -m bench.run_overhead
    uv run python -m bench.run_overhead --objects 1000 --repeats 5

A channel is synced once (``bench.product_job``), then ``--repeats`` times each: a run of
``channel_files_job`` for it (nothing new: every object is skipped from the listing) and a run
of a trivial one-asset job (``bench.dagster_run.noop_job_def``), both through ``execute_job`` in
a fresh process on the same Dagster instance (SQLite in a temp DAGSTER_HOME, the default
multiprocess executor: one step subprocess each). Medians of the wall time from process spawn
to exit, and of ``execute_job`` alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.sealing import SecretCipher
from bench.common import (
    SOURCE_BUCKET,
    Row,
    channel_client,
    last_json_line,
    local_stack,
    object_key,
    parse_size,
    print_table,
    product_env,
    put_objects,
    run_measured,
    s3_channel_config,
    warm_bytecode,
    write_results,
)


def dagster_run(env: dict[str, str], *extra: str) -> tuple[float, dict[str, Any]]:
    measured = run_measured([sys.executable, "-m", "bench.dagster_run", *extra], env)
    report = last_json_line(measured.stdout)
    if not report["ok"]:
        raise RuntimeError(f"run failed: {report}")
    return measured.seconds, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--size", default="10KB")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    warm_bytecode()
    with local_stack("overhead") as (ep, workdir):
        db = FetcherDB(ep.database_url, SecretCipher(ep.secret_key))
        db.migrate()
        prefix = "overhead/"
        keys = [object_key(prefix, i) for i in range(args.objects)]
        put_objects(channel_client(ep), SOURCE_BUCKET, keys, parse_size(args.size))
        channel = "bench-overhead"
        db.save_channel(channel, "s3", s3_channel_config(ep, prefix))
        db.close()
        env = product_env(ep)
        first = [sys.executable, "-m", "bench.product_job", "--channel", channel, "--job", "j0"]
        run_measured(first, env)
        home = Path(tempfile.mkdtemp(prefix="dagster-home-", dir=workdir))
        env["DAGSTER_HOME"] = str(home)
        dagster_run(env, "--job", "noop")  # first run creates the SQLite storage: not counted
        chan_wall, chan_exec, noop_wall, noop_exec = [], [], [], []
        for i in range(args.repeats):
            wall, rep = dagster_run(
                env, "--job", "channel", "--channel", channel, "--job-id", f"j{i + 1}"
            )
            chan_wall.append(wall)
            chan_exec.append(rep["execute_job_s"])
            wall, rep = dagster_run(env, "--job", "noop")
            noop_wall.append(wall)
            noop_exec.append(rep["execute_job_s"])
            print(f"  repeat {i + 1}: channel {chan_wall[-1]:.2f} s, noop {noop_wall[-1]:.2f} s")

    med = statistics.median
    rows = [
        Row(
            "nothing-new channel run vs no-op run (process)",
            med(chan_wall),
            med(noop_wall),
            "s",
            "<= 1.3x",
            med(chan_wall) <= 1.3 * med(noop_wall),
            {"channel": chan_wall, "noop": noop_wall},
        ),
        Row(
            "nothing-new channel run vs no-op (execute_job)",
            med(chan_exec),
            med(noop_exec),
            "s",
            "<= 1.3x",
            med(chan_exec) <= 1.3 * med(noop_exec),
            {"channel": chan_exec, "noop": noop_exec},
        ),
    ]
    print_table(f"Run overhead ({args.objects} objects, nothing new)", rows)
    write_results("run_overhead", vars(args), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
