"""Run queue throughput: N small channel jobs through the run queue vs N no-op runs.

    uv run python -m bench.run_queue                          # 200 jobs, 20 concurrent
    uv run python -m bench.run_queue --jobs 20 --concurrency 5

The deployment as ``amazoniax dev`` runs it: a LocalStack, Dagster's instance storage in the
stack's PostgreSQL (database ``dagster``), the project's ``dagster.yaml`` (QueuedRunCoordinator,
``max_concurrent_runs`` = ``--concurrency``, the default run launcher: one process per run) and
``dagster dev`` on 127.0.0.1 (webserver, daemon, one code server per location). The workspace
has the product's code location and a second one, ``bench_noop``, holding only
``bench.dagster_run.noop_job_def`` (a one-asset job).

Product side: ``--jobs`` channels of ``--objects`` x ``--size`` S3 objects each; one job
message per channel is produced to ``amazoniax_fetcher``; ``kafka_fetcher_sensor`` turns them
into queued ``channel_files_job`` runs. Floor: ``--jobs`` runs of the no-op job submitted to the
same queue through the webserver's GraphQL ``launchRun`` (``DagsterGraphQLClient``), with the
in-process executor (as ``channel_files_job``'s own config selects). One warm-up run of each
first (not counted). Each batch is timed from its first run's enqueue to its last run's end
(RUN_SUCCESS / RUN_FAILURE), from the event log; per run: queue wait (RUN_ENQUEUED →
RUN_STARTING, which the daemon writes when it dequeues a run), launch (RUN_STARTING →
RUN_START: process spawn, imports, the code location) and duration (RUN_START → end); the
mean number of runs in flight; and the CPU seconds per run of the whole ``dagster dev`` tree.
``--dequeue-workers`` overrides ``dequeue_num_workers`` (see bench/README.md: with the default
run launcher each dequeue thread waits until its run has loaded the code location).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.dagster_dev import (
    NOOP_LOCATION,
    cpu_delta,
    start_dagster_dev,
    stop_process_tree,
    tail,
    tree_cpu,
    wait_for_locations,
    write_instance,
    write_workspace,
)

BATCH_TAG = "bench/batch"
TARGET_RATIO = 1.3


@dataclass
class Batch:
    """Timings of one batch of runs, from the instance's event log (epoch seconds)."""

    name: str
    submitted_at: float  # first produce (product) or first launchRun call (floor)
    enqueued: list[float] = field(default_factory=list)
    dequeued: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)
    failed: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average at submit and at the end
    #: CPU seconds the ``dagster dev`` tree spent during the batch, by part (see tree_cpu)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def window_s(self) -> float:
        return max(self.ended) - min(self.enqueued)

    @property
    def from_submit_s(self) -> float:
        return max(self.ended) - self.submitted_at

    @property
    def jobs_per_min(self) -> float:
        return len(self.ended) / self.window_s * 60

    def medians(self) -> dict[str, float]:
        med = statistics.median
        return {
            "queue_wait_s": med(d - e for e, d in zip(self.enqueued, self.dequeued, strict=True)),
            "launch_s": med(s - d for d, s in zip(self.dequeued, self.started, strict=True)),
            "duration_s": med(e - s for s, e in zip(self.started, self.ended, strict=True)),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "runs": len(self.ended),
            "failed": self.failed,
            "window_s": round(self.window_s, 2),
            "from_submit_s": round(self.from_submit_s, 2),
            "jobs_per_min": round(self.jobs_per_min, 2),
            "load_1min": [round(x, 2) for x in self.load],
            "mean_in_flight": round(self.mean_in_flight, 2),
            "cpu_per_run_s": round(self.cpu_per_run, 3),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
        } | {k: round(v, 3) for k, v in self.medians().items()}

    @property
    def mean_in_flight(self) -> float:
        """Runs launched and not yet ended, averaged over the window (the queue's limit is
        the most it can be)."""
        busy = sum(e - d for d, e in zip(self.dequeued, self.ended, strict=True))
        return busy / self.window_s

    @property
    def cpu_per_run(self) -> float:
        return sum(self.cpu.values()) / len(self.ended)


# --------------------------------------------------------------------------- submitting


def job_message(ep: Any, channel: str, prefix: str, batch: str) -> dict[str, Any]:
    from bench.common import s3_channel_config

    return {
        "job_id": f"{batch}-{channel}-{uuid.uuid4().hex[:8]}",
        "channel_id": channel,
        "source_type": "s3",
        "is_new": True,
        "heal_mode": False,
        "config": s3_channel_config(ep, prefix),
    }


def produce_jobs(ep: Any, messages: list[dict[str, Any]]) -> float:
    """Produce the job messages (as ``amazoniax submit`` would); returns the first send time."""
    from confluent_kafka import Producer

    from amazoniax_dagster.clients.kafka import Topics

    producer = Producer({"bootstrap.servers": ep.kafka_bootstrap, "acks": "all", "linger.ms": 20})
    first = time.time()
    for message in messages:
        key = str(message["channel_id"]).encode()
        producer.produce(Topics().fetcher, json.dumps(message).encode(), key=key)
        producer.poll(0)
    producer.flush()
    return first


def submit_noop_runs(port: int, repository: str, count: int, batch: str) -> float:
    """``count`` launchRun calls for the no-op job, 4 at a time (one GraphQL client per thread:
    a client is not thread-safe); returns the first call's time."""
    from dagster_graphql import DagsterGraphQLClient

    local = threading.local()
    run_config: dict[str, Any] = {"execution": {"config": {"in_process": {}}}}

    def submit(_: int) -> str:
        if not hasattr(local, "client"):
            local.client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        return str(
            local.client.submit_job_execution(
                "noop_job",
                repository_location_name=NOOP_LOCATION,
                repository_name=repository,
                run_config=run_config,
                tags={BATCH_TAG: batch},
            )
        )

    first = time.time()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(submit, range(count)))
    return first


# --------------------------------------------------------------------------- measuring


def batch_records(instance: Any, filters: Any) -> list[Any]:
    return list(instance.get_run_records(filters=filters))


def wait_for_batch(
    instance: Any, filters: Any, count: int, timeout: float, proc: Any, log: Path
) -> None:
    import dagster as dg

    done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited ({proc.returncode}):\n{tail(log)}")
        records = batch_records(instance, filters)
        finished = sum(r.dagster_run.status in done for r in records)
        if finished != last:
            print(f"  {finished}/{count} runs finished ({len(records)} created)", flush=True)
            last = finished
        if finished >= count:
            return
        time.sleep(2)
    raise RuntimeError(f"only {last}/{count} runs finished in {timeout:.0f} s:\n{tail(log)}")


def measure_batch(instance: Any, filters: Any, name: str, submitted_at: float) -> Batch:
    import dagster as dg

    kinds = dg.DagsterEventType
    wanted = {
        kinds.RUN_ENQUEUED,
        kinds.RUN_STARTING,
        kinds.RUN_START,
        kinds.RUN_SUCCESS,
        kinds.RUN_FAILURE,
        kinds.RUN_CANCELED,
    }
    batch = Batch(name, submitted_at)
    for record in batch_records(instance, filters):
        at: dict[Any, float] = {}
        for entry in instance.all_logs(record.dagster_run.run_id, of_type=wanted):
            if entry.dagster_event is not None:
                at.setdefault(entry.dagster_event.event_type, entry.timestamp)
        end = at.get(kinds.RUN_SUCCESS) or at.get(kinds.RUN_FAILURE) or at.get(kinds.RUN_CANCELED)
        if end is None or kinds.RUN_START not in at:
            raise RuntimeError(f"run {record.dagster_run.run_id} has no start/end: {at}")
        batch.failed += kinds.RUN_SUCCESS not in at
        batch.enqueued.append(at[kinds.RUN_ENQUEUED])
        batch.dequeued.append(at[kinds.RUN_STARTING])
        batch.started.append(at[kinds.RUN_START])
        batch.ended.append(end)
    return batch


def run_batch(
    title: str,
    name: str,
    submit: Callable[[], float],
    filters: Any,
    count: int,
    *,
    instance: Any,
    proc: Any,
    log: Path,
    timeout: float,
) -> Batch:
    """Submit a batch (``submit`` returns when its first run was asked for), wait until all
    ``count`` runs ended, and measure it with the load and the CPU of the dagster dev tree."""
    load0, cpu0 = os.getloadavg()[0], tree_cpu(proc.pid)
    print(f"{title} (load {load0:.2f})", flush=True)
    first = submit()
    wait_for_batch(instance, filters, count, timeout, proc, log)
    batch = measure_batch(instance, filters, name, first)
    batch.load = (load0, os.getloadavg()[0])
    batch.cpu = cpu_delta(cpu0, tree_cpu(proc.pid))
    print(f"  {json.dumps(batch.summary())}", flush=True)
    return batch


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--objects", type=int, default=5, help="objects per channel")
    parser.add_argument("--size", default="10KB")
    parser.add_argument(
        "--dequeue-workers",
        type=int,
        default=0,
        help="override dequeue_num_workers (0: dagster.yaml's); with the default run launcher "
        "each thread waits until its run's process has loaded the code location",
    )
    parser.add_argument("--timeout", type=float, default=0, help="per batch; 0: 60 s + 10 s/job")
    args = parser.parse_args(argv)
    timeout = args.timeout or 60 + 10 * args.jobs

    import dagster as dg

    from amazoniax_dagster.core import run_tags
    from amazoniax_dagster.core.sealing import SecretCipher
    from amazoniax_dagster.db import FetcherDB
    from amazoniax_dagster.devstack.ports import free_port
    from amazoniax_dagster.devstack.session import ensure_database
    from bench.common import (
        SOURCE_BUCKET,
        Row,
        channel_client,
        local_stack,
        object_key,
        parse_size,
        print_table,
        product_env,
        put_objects,
        warm_bytecode,
        write_results,
    )

    warm_bytecode()
    batches: dict[str, Batch] = {}
    with local_stack("runqueue") as (ep, workdir):
        db = FetcherDB(ep.database_url, SecretCipher(ep.secret_key))
        db.migrate()
        db.close()
        channels = [f"bench-rq-{i:04d}" for i in range(args.jobs)]
        keys = [
            object_key(f"{c}/", i)
            for c in [*channels, "bench-rq-warm"]
            for i in range(args.objects)
        ]
        put_objects(channel_client(ep), SOURCE_BUCKET, keys, parse_size(args.size))
        print(f"seeded {len(keys)} objects for {args.jobs + 1} channels", flush=True)

        env = product_env(ep)
        env["AMAZONIAX_DAGSTER_PG_URL"] = ensure_database(ep.database_url, "dagster")
        home = workdir / "dagster_home"
        write_instance(home, args.concurrency, args.dequeue_workers)
        env["DAGSTER_HOME"] = str(home)
        workspace = write_workspace(workdir / "workspace.yaml")
        port = free_port()
        log = workdir / "dagster-dev.log"
        started = time.monotonic()
        proc = start_dagster_dev(env, workspace, port, log)
        try:
            repository = wait_for_locations(port, proc, log)
            print(f"dagster dev up in {time.monotonic() - started:.1f} s (port {port})", flush=True)
            os.environ["AMAZONIAX_DAGSTER_PG_URL"] = env["AMAZONIAX_DAGSTER_PG_URL"]
            with dg.DagsterInstance.from_config(str(home)) as instance:
                # Warm-up, not counted: the sensor's first tick, the first run of each job.
                warm = job_message(ep, "bench-rq-warm", "bench-rq-warm/", "warm")
                produce_jobs(ep, [warm])
                submit_noop_runs(port, repository, 1, "warm")
                warm_filter = dg.RunsFilter(tags={BATCH_TAG: "warm"})
                wait_for_batch(
                    instance,
                    dg.RunsFilter(tags={run_tags.JOB_ID: warm["job_id"]}),
                    1,
                    120,
                    proc,
                    log,
                )
                wait_for_batch(instance, warm_filter, 1, 120, proc, log)

                messages = [job_message(ep, c, f"{c}/", "prod") for c in channels]
                batches["product"] = run_batch(
                    f"product: {args.jobs} job messages",
                    "product",
                    lambda: produce_jobs(ep, messages),
                    dg.RunsFilter(tags={run_tags.JOB_ID: [m["job_id"] for m in messages]}),
                    args.jobs,
                    instance=instance,
                    proc=proc,
                    log=log,
                    timeout=timeout,
                )
                batches["noop"] = run_batch(
                    f"floor: {args.jobs} no-op runs",
                    "noop",
                    lambda: submit_noop_runs(port, repository, args.jobs, "noop"),
                    dg.RunsFilter(tags={BATCH_TAG: "noop"}),
                    args.jobs,
                    instance=instance,
                    proc=proc,
                    log=log,
                    timeout=timeout,
                )
        finally:
            stop_process_tree(proc)

    product, floor = batches["product"], batches["noop"]
    pm, fm = product.medians(), floor.medians()
    label = f"{args.jobs} jobs, {args.concurrency} concurrent"
    extra = {"product": product.summary(), "noop": floor.summary()}
    ok = product.failed == 0 and product.window_s <= TARGET_RATIO * floor.window_s
    rows = [
        Row(
            f"{label}: throughput vs no-op runs",
            product.jobs_per_min,
            floor.jobs_per_min,
            "jobs/min",
            f">= {1 / TARGET_RATIO:.2f}x",
            ok,
            extra,
        ),
        Row(
            f"{label}: first enqueued -> last ended",
            product.window_s,
            floor.window_s,
            "s",
            f"<= {TARGET_RATIO}x",
            ok,
        ),
        Row(
            f"{label}: first submit -> last ended",
            product.from_submit_s,
            floor.from_submit_s,
            "s",
            "-",
        ),
        Row("per run: queue wait (median)", pm["queue_wait_s"], fm["queue_wait_s"], "s", "-"),
        Row("per run: dequeued -> RUN_START (median)", pm["launch_s"], fm["launch_s"], "s", "-"),
        Row("per run: RUN_START -> end (median)", pm["duration_s"], fm["duration_s"], "s", "-"),
        Row(
            "per run: CPU of the dagster dev tree (mean)",
            product.cpu_per_run,
            floor.cpu_per_run,
            "s",
            "-",
            None,
            {"product": product.cpu, "noop": floor.cpu},
        ),
    ]
    print_table(f"Run queue ({label}; failed runs: {product.failed} / {floor.failed})", rows)
    write_results("run_queue", vars(args), rows)
    return 0 if product.failed == 0 and floor.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
