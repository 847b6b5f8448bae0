"""Run overhead: a channel run with nothing new vs a no-op asset, both as whole Dagster runs.

    uv run python -m bench.run_overhead
    uv run python -m bench.run_overhead --objects 1000 --repeats 5

A channel is synced once (``bench.product_job``), then ``--repeats`` times each: a run of
``channel_files_job`` for it (nothing new: every object is skipped from the listing) and a run
of a trivial one-asset job (``bench.dagster_run.noop_job_def``), both through ``execute_job`` in
a fresh process on the same Dagster instance (SQLite in a temp DAGSTER_HOME), both with the
in-process executor (``channel_files_job``'s own; ``--executors`` sets only the no-op job's).
Medians of the wall time from process spawn to exit, and of ``execute_job`` alone, so the ratio
compares the channel step's work with an empty step's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB
from bench import profile
from bench.common import (
    RESULTS_DIR,
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
    parser.add_argument("--executors", default="in_process")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy one more in-process run of each job"
    )
    args = parser.parse_args(argv)
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
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
        runs: dict[str, dict[str, list[float]]] = {}
        for executor in executors:
            walls: dict[str, list[float]] = {"channel": [], "noop": [], "cx": [], "nx": []}
            for i in range(args.repeats):
                run = ["--channel", channel, "--job-id", f"j-{executor}-{i + 1}"]
                wall, rep = dagster_run(env, "--job", "channel", *run, "--executor", executor)
                walls["channel"].append(wall)
                walls["cx"].append(rep["execute_job_s"])
                wall, rep = dagster_run(env, "--job", "noop", "--executor", executor)
                walls["noop"].append(wall)
                walls["nx"].append(rep["execute_job_s"])
                print(
                    f"  {executor} repeat {i + 1}: channel {walls['channel'][-1]:.2f} s, "
                    f"noop {walls['noop'][-1]:.2f} s",
                    flush=True,
                )
            runs[executor] = walls
        if args.profile:
            # One more pair in process, under py-spy, on the same instance (not in the table).
            for job, extra in (
                ("channel", ["--channel", channel, "--job-id", "j-profile"]),
                ("noop", []),
            ):
                out = RESULTS_DIR / f"profile-overhead-{job}.txt"
                cmd = [sys.executable, "-m", "bench.dagster_run", "--job", job, *extra]
                run_measured(profile.profile_cmd([*cmd, "--executor", "in_process"], out), env)
                print(f"  profiled the {job} run: {out}")

    med = statistics.median
    rows: list[Row] = []
    for executor, walls in runs.items():
        label = "" if executor == "multiprocess" else f", {executor.replace('_', '-')} executor"
        for what, chan, noop in (("process", "channel", "noop"), ("execute_job", "cx", "nx")):
            c, n = med(walls[chan]), med(walls[noop])
            rows.append(
                Row(
                    f"nothing-new channel run vs no-op run ({what}{label})",
                    c,
                    n,
                    "s",
                    "<= 1.3x",
                    c <= 1.3 * n,
                    {"channel": walls[chan], "noop": walls[noop], "executor": executor},
                )
            )
    print_table(f"Run overhead ({args.objects} objects, nothing new)", rows)
    write_results("run_overhead", vars(args), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
