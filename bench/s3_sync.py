"""S3 → S3 sync: the product's channel job vs ``rclone copy`` on the same SeaweedFS.

    uv run python -m bench.s3_sync                          # 1,000 x 100 KB and 10,000 x 10 KB
    uv run python -m bench.s3_sync --objects 1000 --size 100KB
    uv run python -m bench.s3_sync --objects 200 --size 10KB --profile --dagster

Phases per data set: initial copy, no-change re-run, re-run after 1% of the objects changed,
each ``--repeats`` times (default 3) on separate lanes; the table shows medians, the JSON
every run. Product: ``python -m bench.product_job`` (a fresh process per phase: imports, DB,
listing, transfers, recording). Reference: ``rclone copy --transfers 20 --checkers 20``
(``--checksum`` on re-runs) between two env-configured remotes. ``--dagster`` adds whole
Dagster runs of the initial copy (``execute_job`` in a fresh process, a fresh channel so it
copies everything, on a Dagster home whose storage an uncounted no-op run created first; one run
with the multiprocess executor, one in-process: the job's default);
``--profile`` records py-spy profiles of the product's initial and no-change phases on a
separate channel (their timings are not in the table).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from bench import profile
from bench.common import (
    OUTPUT_BUCKET,
    RESULTS_DIR,
    SOURCE_BUCKET,
    Measured,
    Row,
    admin_client,
    channel_client,
    count_objects,
    human_size,
    last_json_line,
    local_stack,
    median,
    object_key,
    parse_size,
    print_table,
    product_env,
    put_objects,
    rclone_copy_cmd,
    rclone_env,
    rclone_s3_env,
    require_rclone,
    run_measured,
    runs_extra,
    s3_channel_config,
    warm_bytecode,
    write_results,
)


@dataclass(frozen=True)
class DataSet:
    objects: int
    size: int

    @property
    def label(self) -> str:
        return f"{self.objects} x {human_size(self.size)}"

    @property
    def prefix(self) -> str:
        return f"set-{self.objects}x{self.size}/"


def product_cmd(channel: str, job: str) -> list[str]:
    """Job ids are global in the fetcher DB: one per channel, or a lane's job would count as a
    re-run of another lane's (its file records then dropped as already recorded)."""
    job_id = f"{channel}--{job}"
    return [sys.executable, "-m", "bench.product_job", "--channel", channel, "--job", job_id]


def run_product(env: dict[str, str], channel: str, job: str) -> tuple[Measured, dict[str, Any]]:
    measured = run_measured(product_cmd(channel, job), env)
    report = last_json_line(measured.stdout)
    if not report["ok"]:
        raise RuntimeError(f"product job {job} failed: {report['error']}")
    return measured, report


def run_rclone(env: dict[str, str], src: str, dst: str, *, checksum: bool) -> Measured:
    return run_measured(rclone_copy_cmd(src, dst, checksum=checksum), env)


def run_dagster(
    env: dict[str, str], channel: str, job: str, home: Path, executor: str = "multiprocess"
) -> tuple[float, Any]:
    cmd = [sys.executable, "-m", "bench.dagster_run", "--job", "channel"]
    cmd += ["--channel", channel, "--job-id", f"{channel}--{job}", "--executor", executor]
    measured = run_measured(cmd, env | {"DAGSTER_HOME": str(home)})
    return measured.seconds, last_json_line(measured.stdout)


def bench_set(
    ep: StackEndpoints,
    workdir: Path,
    data: DataSet,
    *,
    dagster: bool,
    do_profile: bool,
    repeats: int,
) -> list[Row]:
    """Each phase ``repeats`` times on as many lanes (a channel and an rclone destination
    each, all reading the same source), product and rclone alternating; medians."""
    admin, customer = admin_client(ep), channel_client(ep)
    keys = [object_key(data.prefix, i) for i in range(data.objects)]
    print(f"\n[{data.label}] seeding {len(keys)} objects ...", flush=True)
    put_objects(customer, SOURCE_BUCKET, keys, data.size)

    db = FetcherDB(ep.database_url, SecretCipher(ep.secret_key))
    channel = f"bench-s3-{data.objects}x{data.size}"
    config = s3_channel_config(ep, data.prefix)
    lanes = [f"{channel}-{lane}" for lane in range(repeats)]
    for lane in lanes:
        db.save_channel(lane, "s3", config)
    env = product_env(ep)
    remotes = rclone_s3_env("src", ep, channel=True) | rclone_s3_env("dst", ep, channel=False)
    renv = rclone_env(remotes, workdir)
    src = f"src:{SOURCE_BUCKET}/{data.prefix}"
    rows: list[Row] = []
    details: dict[str, Any] = {}

    def phase(
        name: str, job: str, check: str, expect: int, limit: float, *, checksum: bool
    ) -> dict[str, Any]:
        products: list[Measured] = []
        refs: list[Measured] = []
        report: dict[str, Any] = {}
        for lane in lanes:
            measured, report = run_product(env, lane, job)
            assert report["summary"][check] == expect, report
            products.append(measured)
            refs.append(
                run_rclone(renv, src, f"dst:{OUTPUT_BUCKET}/rclone/{lane}/", checksum=checksum)
            )
        p_med, r_med = median([m.seconds for m in products]), median([m.seconds for m in refs])
        runs = runs_extra(products, refs)
        rows.append(
            Row(
                f"S3 {data.label}: {name}",
                p_med,
                r_med,
                "s",
                f"<= {limit:.1f}x",
                p_med <= r_med * limit,
                report | runs,
            )
        )
        print(f"  {name}: product {p_med:.2f} s, rclone {r_med:.2f} s {runs}", flush=True)
        return report

    # 1. initial copy
    details["initial"] = phase(
        "initial copy", "job-initial", "files_uploaded", data.objects, 1.0, checksum=False
    )
    for lane in lanes:
        assert count_objects(admin, OUTPUT_BUCKET, f"rclone/{lane}/") == data.objects

    # 2. no-change re-run
    limit = 1.0 if data.objects >= 10_000 else 2.0
    phase("no-change re-run", "job-nochange", "unchanged", data.objects, limit, checksum=True)

    # 3. 1% changed: every changed object is re-fetched, uploaded and classified "updated"
    # (its path was delivered before).
    changed = random.Random(7).sample(keys, max(1, data.objects // 100))
    put_objects(customer, SOURCE_BUCKET, changed, data.size)
    report = phase(
        f"1% changed ({len(changed)})",
        "job-changed",
        "files_uploaded",
        len(changed),
        1.0,
        checksum=True,
    )
    assert report["summary"]["updated"] == len(changed), report

    if dagster:
        # One whole run on a fresh channel (so it copies everything), with the job's executor.
        initial_rclone = rows[0].reference or 0.0
        for executor in ("in_process",):
            fresh = f"{channel}-dagster-{executor}"
            db.save_channel(fresh, "s3", config)
            home = Path(tempfile.mkdtemp(prefix="dagster-home-", dir=workdir))
            # A deployment's instance exists before its runs: the first run on a new home
            # creates its SQLite storage (1.5-2.6 s), so a no-op run does that, not counted,
            # as in bench.run_overhead.
            noop = [sys.executable, "-m", "bench.dagster_run", "--job", "noop"]
            run_measured(noop, env | {"DAGSTER_HOME": str(home)})
            d_s, d_report = run_dagster(env, fresh, "job-dagster-initial", home, executor)
            label = "" if executor == "multiprocess" else ", in-process executor"
            rows.append(
                Row(
                    f"S3 {data.label}: initial copy, whole Dagster run{label}",
                    d_s,
                    initial_rclone,
                    "s",
                    "<= 1.0x",
                    d_s <= initial_rclone,
                    d_report | {"core_only_s": rows[0].product, "executor": executor},
                )
            )
            print(f"  dagster run initial ({executor}): {d_s:.2f} s ({d_report})", flush=True)

    if do_profile:
        prof = channel + "-profile"
        db.save_channel(prof, "s3", config)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        for what in ("initial", "nochange"):
            out = RESULTS_DIR / f"profile-s3-{data.objects}x{data.size}-{what}.txt"
            cmd = profile.profile_cmd(product_cmd(prof, f"job-prof-{what}"), out)
            measured = run_measured(cmd, env)
            print(f"  profiled {what}: {measured.seconds:.2f} s under py-spy")
            details[f"profile_{what}"] = profile.print_summary(what, out)
    rows[0].extra = rows[0].extra | {k: v for k, v in details.items() if k != "initial"}
    db.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, help="objects per set (with --size: one set)")
    parser.add_argument("--size", type=str, help="object size, e.g. 100KB")
    parser.add_argument(
        "--sets", default="1000x100KB,10000x10KB", help="comma-separated NxSIZE data sets"
    )
    parser.add_argument("--dagster", action="store_true", help="add a whole Dagster run row")
    parser.add_argument("--profile", action="store_true", help="py-spy the product phases")
    parser.add_argument("--repeats", type=int, default=3, help="runs per phase (median)")
    args = parser.parse_args(argv)
    require_rclone()
    if args.objects or args.size:
        sets = [DataSet(args.objects or 1000, parse_size(args.size or "100KB"))]
    else:
        sets = []
        for item in args.sets.split(","):
            count, size = item.lower().split("x", 1)
            sets.append(DataSet(int(count), parse_size(size)))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    warm_bytecode()
    rows: list[Row] = []
    with local_stack("s3") as (ep, workdir):
        FetcherDB(ep.database_url, SecretCipher(ep.secret_key)).migrate()
        for data in sets:
            rows += bench_set(
                ep,
                workdir,
                data,
                dagster=args.dagster,
                do_profile=args.profile,
                repeats=max(1, args.repeats),
            )
    print_table("S3 -> S3 sync (seconds, lower is better)", rows)
    write_results("s3_sync", {"sets": [d.label for d in sets]}, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
