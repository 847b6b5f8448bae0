"""Operations, on the real Dagster processes (code server, webserver, daemon) and the real
local stack: what a person sees and does in the UI, how many runs the queue lets run at once,
and what happens to a run that takes too long.

1. A person opens the asset ``channel_files`` in Chromium (driven by Playwright), backfills two
   channel partitions through the "Materialize…" dialog; both runs succeed, their files are in
   the output bucket and two ``success`` statuses are on ``amazoniax_status``.
2. 30 Kafka job messages with the run queue limited to 5: never more than 5 runs STARTED at
   once (sampled every 200 ms), all 30 succeed and report success.
3. A run of a channel whose bucket does not exist fails with its message and metadata on the
   run page, and no stack trace (an expected failure).
4. Refused job messages show on the ``fetcher_dead_letters`` asset (a table of the letters)
   and in the Kafka sensor's tick list (the running count leads its cursor).
5. A run whose source answers too slowly for its ``dagster/max_runtime`` is terminated by the
   monitoring daemon and reported ``failed`` on ``amazoniax_status`` by the run status sensors.

All share one module-scoped set of Dagster processes (see ``dagster_server``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg
import pytest

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.core import run_tags
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.devstack.session import PROJECT_ROOT
from assets.partitions import CHANNELS
from sensors.dead_letters import DEAD_LETTERS
from tests.integration.dagster_server import (
    LOCATION,
    REPOSITORY,
    DagsterServer,
    InstanceSettings,
    dagster_server,
)
from tests.integration.faults import FaultPlan, flaky_proxy
from tests.integration.ftp_servers import PASSWORD, USER, FtpServer
from tests.integration.harness import end_offsets

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.integration

TOPICS = Topics()
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_CONCURRENT_RUNS = 5
T = TypeVar("T")


# --------------------------------------------------------------------------------- helpers


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 1.0,
    server: DagsterServer | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if server is not None:
            server.check_alive()
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            logs = f"\n{server.logs()}" if server is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{logs}")
        time.sleep(interval)


IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def wait_for_run(server: DagsterServer, run_id: str, *, timeout: float) -> dg.DagsterRun:
    """The run, once it has ended."""

    def finished() -> dg.DagsterRun | None:
        run = server.instance.get_run_by_id(run_id)
        return run if run is not None and run.is_finished else None

    return wait_for(f"run {run_id} to end", finished, timeout=timeout, server=server)


@dataclass
class StatusReader:
    """Reads ``amazoniax_status`` from where it ended when the reader was made."""

    bus: KafkaBus
    positions: dict[int, int]
    by_job: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_end(cls, bus: KafkaBus) -> StatusReader:
        return cls(bus, end_offsets(bus, TOPICS.status))

    def poll(self) -> dict[str, list[dict[str, Any]]]:
        batch = self.bus.read(TOPICS.status, self.positions, max_records=10_000, max_seconds=10)
        self.positions = self.positions | batch.next_offsets
        for record in batch.records:
            if record.value is not None:
                message = json.loads(record.value)
                self.by_job.setdefault(message["job_id"], []).append(message)
        return self.by_job

    def wait(
        self, job_ids: list[str], *, timeout: float, server: DagsterServer, hint: str = ""
    ) -> dict[str, Any]:
        """The (first) status of each job, once every one of them has one."""
        deadline = time.monotonic() + timeout
        while True:
            server.check_alive()
            seen = self.poll()
            missing = [j for j in job_ids if j not in seen]
            if not missing:
                return {j: seen[j][0] for j in job_ids}
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no message on {TOPICS.status} within {timeout:.0f}s for {len(missing)} of "
                    f"{len(job_ids)} jobs: {missing[:5]}{hint}\n{server.logs()}"
                )
            time.sleep(1.0)


def s3_config(stack: StackEndpoints, bucket: str, remote_path: str, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "remote_path": remote_path,
        "file_pattern": "*.csv",
        "endpoint_url": stack.s3_endpoint_url,
        "region": stack.s3_region,
        "access_key": stack.channel_s3_access_key_id,
        "secret_access_key": stack.channel_s3_secret_access_key,
    } | extra


def new_bucket(admin: Any, customer: Any, files: dict[str, bytes]) -> str:
    bucket = f"src-{uuid.uuid4().hex[:12]}"
    admin.create_bucket(Bucket=bucket)
    for key, body in files.items():
        customer.put_object(Bucket=bucket, Key=key, Body=body)
    return bucket


def keys_under(client: Any, bucket: str, prefix: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"][len(prefix) :] for obj in listing.get("Contents", []))


def runs_with(instance: dg.DagsterInstance, run_tags: dict[str, Any]) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags=run_tags)))


def launch_ui_run(server: DagsterServer, channel_id: str, run_tags: dict[str, str]) -> str:
    """Launch one partition of ``channel_files`` the way the UI's launchpad does."""
    data = server.graphql(
        """
        mutation($params: ExecutionParams!) {
          launchRun(executionParams: $params) {
            __typename
            ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message }
            ... on InvalidSubsetError { message }
            ... on RunConfigValidationInvalid { errors { message } }
          }
        }
        """,
        {
            "params": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "jobName": "channel_files_job",
                    "assetSelection": [{"path": ["channel_files"]}],
                },
                "runConfigData": "{}",
                "executionMetadata": {
                    "tags": [
                        {"key": k, "value": v}
                        for k, v in ({"dagster/partition": channel_id} | run_tags).items()
                    ]
                },
            }
        },
    )
    result = data["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id: str = result["run"]["runId"]
    return run_id


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def module_bus(stack: StackEndpoints) -> Iterator[KafkaBus]:
    bus = KafkaBus(stack.kafka_bootstrap, client_id="tests-operations")
    yield bus
    bus.close()


@pytest.fixture(scope="module")
def dagster(
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    module_bus: KafkaBus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DagsterServer]:
    """Code server, webserver and daemon, once for the module; stopped however it ends."""

    def start_sensor_at_the_end(server: DagsterServer) -> None:
        # The session's other tests wrote to amazoniax_fetcher; this instance must not replay
        # them (the sensor's first cursor would be the beginning of the topic).
        offsets = end_offsets(module_bus, TOPICS.fetcher)
        cursor = json.dumps({str(p): o for p, o in sorted(offsets.items())})
        server.set_sensor_cursor("kafka_fetcher_sensor", cursor)

    started = time.monotonic()
    with dagster_server(
        stack,
        tmp_path_factory.mktemp("operations"),
        settings=InstanceSettings(max_concurrent_runs=MAX_CONCURRENT_RUNS),
        prepare=start_sensor_at_the_end,
    ) as server:
        print(f"\n[operations] dagster processes up in {time.monotonic() - started:.1f}s")
        yield server
        stopping = time.monotonic()
    print(f"[operations] dagster processes stopped in {time.monotonic() - stopping:.1f}s")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium (``playwright install`` cannot download browsers here)."""
    path = shutil.which("chromium")
    if path is None:
        done = subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "_chromium.sh")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        path = shutil.which("chromium")
        if path is None:
            pytest.skip(
                "chromium is not installed and scripts/_chromium.sh could not install it: "
                + (done.stderr.strip()[-400:] or f"exit {done.returncode}")
            )
    return path


@pytest.fixture()
def buckets(stack: StackEndpoints, output_client: Any) -> tuple[Any, Any]:
    """(admin, customer) S3 clients: buckets made by the admin, filled by the customer."""
    from amazoniax_dagster.clients import s3 as s3util

    customer = s3util.make_client(
        endpoint_url=stack.s3_endpoint_url,
        access_key_id=stack.channel_s3_access_key_id,
        secret_access_key=stack.channel_s3_secret_access_key,
        region=stack.s3_region,
    )
    return output_client, customer


# ---------------------------------------------------------------------------------- tests


def test_a_person_backfills_two_channels_from_the_asset_page(
    dagster: DagsterServer,
    chromium: str,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    buckets: tuple[Any, Any],
    output_client: Any,
    module_bus: KafkaBus,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # the machine is busy with Dagster processes
    started = time.monotonic()
    admin, customer = buckets
    tag = uuid.uuid4().hex[:6]
    channels = [f"ui-{tag}-north", f"ui-{tag}-south"]
    # north: a CSV on S3 (copied, passes unchecked); south: a broken JSON file on FTP, which
    # is read and so checked, and fails its file check.
    north, south = channels
    files = {north: "csv", south: "json"}
    bucket = new_bucket(admin, customer, {f"exports/{north}.csv": b"id,v\n1,a\n"})
    fetcher_db.save_channel(north, "s3", s3_config(stack, bucket, "/exports/"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / f"{south}.json").write_bytes(b'{"id": 1,')
    ftp = FtpServer(tmp_path)
    ftp_config = {"host": "127.0.0.1", "username": USER, "password": PASSWORD}
    ftp_config |= {"remote_path": "/data", "file_pattern": "*"}
    dagster.instance.add_dynamic_partitions(CHANNELS, channels)
    statuses = StatusReader.from_end(module_bus)
    ARTIFACTS.mkdir(exist_ok=True)

    with ftp, sync_playwright() as pw:
        fetcher_db.save_channel(south, "ftp", ftp_config | {"port": ftp.port})
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            try:
                page.goto(f"{dagster.url}/assets/channel_files")
                expect(page.get_by_text("Files fetched for one channel")).to_be_visible()
                page.get_by_role("button", name="Materialize…").first.click()

                dialog = page.get_by_role("dialog")
                expect(
                    dialog.get_by_text("Launch runs to materialize channel_files")
                ).to_be_visible()
                dialog.get_by_text("Select a partition or create one").click()
                search = page.get_by_placeholder("Filter partitions")
                for channel in channels:
                    search.fill(channel)
                    page.get_by_role("menuitem").filter(has_text=channel).click()
                page.keyboard.press("Escape")  # closes the partition list, not the dialog
                expect(search).to_be_hidden()
                expect(dialog.get_by_text("2 partitions")).to_be_visible()
                for channel in channels:
                    expect(dialog.get_by_text(channel, exact=True).first).to_be_visible()
                page.screenshot(path=str(ARTIFACTS / "operations-backfill-dialog.png"))
                dialog.get_by_role("button", name="Launch backfill").click()

                toast = page.get_by_text(re.compile(r"Created backfill \S+"))
                expect(toast).to_be_visible()
                match = re.search(r"Created backfill (\S+)", toast.inner_text())
                assert match, toast.inner_text()
                backfill_id = match.group(1)
                launched = time.monotonic()

                # The backfill daemon submits the runs (its loop sleeps 30 s), the queue
                # starts them.
                def both_finished() -> list[dg.DagsterRun] | None:
                    runs = runs_with(dagster.instance, {"dagster/backfill": backfill_id})
                    done = len(runs) == 2 and all(r.is_finished for r in runs)
                    return runs if done else None

                runs = wait_for(
                    f"the 2 runs of backfill {backfill_id}",
                    both_finished,
                    timeout=150,
                    server=dagster,
                )
                print(
                    f"\n[operations] backfill runs ({sorted({r.job_name for r in runs})}) "
                    f"finished {time.monotonic() - launched:.1f}s after the launch"
                )
                assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}, [
                    (r.run_id, r.status) for r in runs
                ]
                by_channel = {r.tags["dagster/partition"]: r for r in runs}
                assert sorted(by_channel) == sorted(channels)

                # What the person sees afterwards: the asset materialized, its metadata.
                page.goto(f"{dagster.url}/assets/channel_files")
                expect(page.get_by_text("Never materialized")).to_have_count(0)
                expect(page.get_by_text("files_uploaded").first).to_be_visible()
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(ARTIFACTS / "operations-asset-page.png"))
                page.get_by_role("tab", name="Partitions").click()
                expect(page.get_by_text("Materialized (2)")).to_be_visible()
                for channel in channels:
                    expect(page.get_by_text(channel, exact=True).first).to_be_visible()
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(ARTIFACTS / "operations-asset-partitions.png"))

                # North runs again, so that the latest check result is a pass: the asset
                # must still show that south failed. (The overview's "Latest check results"
                # are the latest materialization's, north's: see the screenshot.)
                rerun = wait_for_run(dagster, launch_ui_run(dagster, north, {}), timeout=120)
                assert rerun.status is dg.DagsterRunStatus.SUCCESS, rerun.status
                page.goto(f"{dagster.url}/assets/channel_files")
                expect(page.get_by_text("Latest check results")).to_be_visible()
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(ARTIFACTS / "operations-asset-after-rerun.png"))

                # The checks tab: the check is Failed (some channel fails it), and its latest
                # result, north's pass, names south as the channel still failing.
                page.goto(f"{dagster.url}/assets/channel_files?view=checks")
                expect(page.get_by_text(f"1 other channel failing: {south}")).to_be_visible()
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(ARTIFACTS / "operations-asset-checks.png"))
                checks_text = page.inner_text("body")
                assert "files_well_formed\nFailed" in checks_text, checks_text
                assert (
                    f"{north}: 0 checked files well formed; 1 other channel failing: {south}"
                    in checks_text
                ), checks_text
                assert f"Partition\n{north}" in checks_text
                assert f"failing_channels\n{south}" in checks_text, checks_text
                # The check's partitions: one channel failed, one passed, by name.
                page.get_by_role("tab", name="Partitions").last.click()
                expect(page.get_by_text("Failed (1)")).to_be_visible()
                expect(page.get_by_text("Passed (1)")).to_be_visible()
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(ARTIFACTS / "operations-check-partitions.png"))
                partitions_text = page.inner_text("body")
                assert north in partitions_text and south in partitions_text
                page.goto(f"{dagster.url}/assets/channel_files?view=partitions&partition={south}")
                expect(page.get_by_text("invalid_files").first).to_be_visible()
                page.wait_for_load_state("networkidle")
                page.screenshot(
                    path=str(ARTIFACTS / "operations-failing-partition.png"), full_page=True
                )
                partition_text = page.inner_text("body")
                for field in ("job_id", "channel", "s3_output_path", "job_log", "invalid_files"):
                    assert f"{field}\n" in partition_text or f"{field}\t" in partition_text, field
                assert south in partition_text
            except BaseException:
                with suppress(Exception):  # never hide the failure behind a screenshot error
                    page.screenshot(path=str(ARTIFACTS / "operations-asset-page-failure.png"))
                raise
        finally:
            browser.close()

    jobs = {channel: f"ui-{run.run_id}" for channel, run in by_channel.items()}
    for channel, job_id in jobs.items():
        assert keys_under(output_client, stack.output_bucket, f"raw/{channel}/{job_id}/") == [
            f"{channel}.{files[channel]}"
        ]
    job_names = sorted({r.job_name for r in runs})
    reported = statuses.wait(
        list(jobs.values()),
        timeout=60,
        server=dagster,
        hint=f" (the runs are of {job_names}: do the run status sensors monitor it?)",
    )
    for channel, job_id in jobs.items():
        assert reported[job_id]["status"] == "success", reported[job_id]
        assert reported[job_id]["channel_id"] == channel
        assert reported[job_id]["metadata"]["files_processed"] == 1
    print(f"[operations] backfill test {time.monotonic() - started:.1f}s")


def test_a_run_that_exceeds_its_max_runtime_is_failed_and_reported(
    dagster: DagsterServer,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    buckets: tuple[Any, Any],
    module_bus: KafkaBus,
) -> None:
    started = time.monotonic()
    admin, customer = buckets
    channel = f"slow-{uuid.uuid4().hex[:6]}"
    bucket = new_bucket(admin, customer, {"exports/late.csv": b"id\n1\n"})
    statuses = StatusReader.from_end(module_bus)
    max_runtime = 8  # enough for the run to reach its source on a busy machine

    # Every request waits 25 s before it is forwarded: below the product's S3 read timeout
    # (30 s), so the source looks slow, not dead.
    slow = FaultPlan(matches=lambda method, path: True, failures=1_000_000, delay_seconds=25)
    with flaky_proxy(stack.s3_endpoint_url, slow) as slow_endpoint:
        fetcher_db.save_channel(
            channel, "s3", s3_config(stack, bucket, "/exports/", endpoint_url=slow_endpoint)
        )
        dagster.instance.add_dynamic_partitions(CHANNELS, [channel])
        run_id = launch_ui_run(dagster, channel, {"dagster/max_runtime": str(max_runtime)})

        run = wait_for_run(dagster, run_id, timeout=90)
        stats = dagster.instance.get_run_stats(run_id)
        job_id = f"ui-{run_id}"
        reported = statuses.wait([job_id], timeout=60, server=dagster)

    assert run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED), run.status
    assert stats.start_time is not None and stats.end_time is not None
    ran_for = stats.end_time - stats.start_time
    # Terminated by the monitoring daemon (polls every 2 s), well before the source answered.
    assert max_runtime <= ran_for < 25, ran_for
    # The run was waiting on its source when it was stopped, and it was stopped for its runtime.
    assert any("list-type=2" in path for _, path in slow.seen), slow.seen
    messages = [e.message for e in dagster.instance.all_logs(run_id)]
    assert any(f"maximum runtime of {max_runtime} seconds" in m for m in messages), messages

    status = reported[job_id]
    assert status["status"] == "failed", status
    assert status["channel_id"] == channel
    all_for_job = statuses.poll()[job_id]
    record = fetcher_db.get_job(job_id)
    assert record is not None and record.status in ("failed", "canceled"), record
    print(
        f"\n[operations] timeout test {time.monotonic() - started:.1f}s: run {run.status.value} "
        f"after {ran_for:.1f}s; {len(all_for_job)} status message(s): "
        f"{[(m['status'], m['message']) for m in all_for_job]}"
    )


# Thirty Dagster run processes, five at a time: minutes on a slow 2-core machine. The loop
# below fails on a stall, so the test's own limit only has to outlast a slow but moving queue.
@pytest.mark.timeout(1200)
def test_thirty_jobs_never_run_more_than_five_at_once(
    dagster: DagsterServer,
    stack: StackEndpoints,
    buckets: tuple[Any, Any],
    output_client: Any,
    module_bus: KafkaBus,
) -> None:
    started = time.monotonic()
    admin, customer = buckets
    tag = uuid.uuid4().hex[:6]
    count = 30
    channels = [f"many-{tag}-{i:02d}" for i in range(count)]
    bucket = new_bucket(
        admin, customer, {f"c{i:02d}/f{i:02d}.csv": f"id\n{i}\n".encode() for i in range(count)}
    )
    jobs = {channel: f"job-{tag}-{i:02d}" for i, channel in enumerate(channels)}
    statuses = StatusReader.from_end(module_bus)
    for i, channel in enumerate(channels):
        message = {
            "job_id": jobs[channel],
            "channel_id": channel,
            "source_type": "s3",
            "is_new": True,
            "heal_mode": False,
            "config": s3_config(stack, bucket, f"/c{i:02d}/"),
        }
        module_bus.publish(TOPICS.fetcher, json.dumps(message).encode(), key=channel.encode())

    in_progress = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
    job_filter = {run_tags.JOB_ID: list(jobs.values())}
    max_started = max_in_progress = samples = 0
    # No fixed deadline: how long 30 runs take depends on the machine (130 s here, over 240 s
    # on a loaded CI host). The queue must keep moving: a run must finish every `stall` seconds.
    stall = 180.0
    progress_at, finished_before = time.monotonic(), -1
    runs: list[dg.DagsterRun] = []
    last_check = 0.0
    while True:
        active = dagster.instance.get_runs(filters=dg.RunsFilter(statuses=in_progress))
        started_now = sum(1 for r in active if r.status is dg.DagsterRunStatus.STARTED)
        max_started = max(max_started, started_now)
        max_in_progress = max(max_in_progress, len(active))
        samples += 1
        assert started_now <= MAX_CONCURRENT_RUNS, [(r.run_id, r.status) for r in active]
        if time.monotonic() - last_check >= 1.0:
            last_check = time.monotonic()
            dagster.check_alive()
            runs = runs_with(dagster.instance, job_filter)
            if len(runs) == count and all(r.is_finished for r in runs):
                break
            finished = sum(r.is_finished for r in runs)
            if finished > finished_before:
                progress_at, finished_before = time.monotonic(), finished
            elif time.monotonic() - progress_at > stall:
                raise AssertionError(
                    f"no run finished for {stall:.0f}s: {finished}/{len(runs)} of {count} runs "
                    f"finished\n{dagster.logs()}"
                )
        time.sleep(0.2)
    runs_done = time.monotonic()

    assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}, sorted(
        (r.tags[run_tags.JOB_ID], r.status.value) for r in runs
    )
    assert sorted(r.tags[run_tags.JOB_ID] for r in runs) == sorted(jobs.values())
    assert max_started <= MAX_CONCURRENT_RUNS
    assert max_started >= 2, "the runs never overlapped: the test proves nothing"

    records = dagster.instance.get_run_records(filters=dg.RunsFilter(tags=job_filter))
    created = sorted(r.create_timestamp.timestamp() for r in records)
    begun = sorted(r.start_time or 0.0 for r in records)
    ended = sorted(r.end_time or 0.0 for r in records)
    runtimes = sorted((r.end_time or 0.0) - (r.start_time or 0.0) for r in records)
    timeline = (
        f"runs created over {created[-1] - created[0]:.1f}s, started over "
        f"{begun[-1] - begun[0]:.1f}s, ended over {ended[-1] - ended[0]:.1f}s; "
        f"run time median {runtimes[len(runtimes) // 2]:.1f}s, max {runtimes[-1]:.1f}s"
    )

    reported = statuses.wait(list(jobs.values()), timeout=180, server=dagster)
    assert {m["status"] for m in reported.values()} == {"success"}
    for i, channel in enumerate(channels):
        folder = f"raw/{channel}/{jobs[channel]}/"
        assert keys_under(output_client, stack.output_bucket, folder) == [f"f{i:02d}.csv"]
    print(
        f"\n[operations] {count} runs: all finished {runs_done - started:.1f}s after the "
        f"messages, statuses after {time.monotonic() - started:.1f}s; at most {max_started} "
        f"STARTED and {max_in_progress} STARTING+STARTED at once ({samples} samples); "
        f"{timeline}"
    )
    # The records runs these jobs set off, ended: the module's later tests start on an idle queue.
    records = dg.AssetKey("channel_records")
    wait_for(
        "the channels' records runs",
        lambda: (
            set(channels) <= dagster.instance.get_materialized_partitions(records)
            and not dagster.instance.get_runs_count(dg.RunsFilter(statuses=IN_FLIGHT))
        ),
        timeout=300,
        server=dagster,
    )


@contextmanager
def chromium_page(chromium: str, failure_screenshot: str) -> Iterator[Page]:
    """A Chromium page; a screenshot of it named ``failure_screenshot`` when the body fails."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # the machine is busy with Dagster processes
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            try:
                yield page
            except BaseException:
                with suppress(Exception):  # never hide the failure behind a screenshot error
                    page.screenshot(path=str(ARTIFACTS / failure_screenshot))
                raise
        finally:
            browser.close()


def test_a_wrong_bucket_run_shows_its_message_without_a_traceback(
    dagster: DagsterServer,
    chromium: str,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
) -> None:
    from playwright.sync_api import expect

    channel = f"nobucket-{uuid.uuid4().hex[:6]}"
    missing = f"missing-{uuid.uuid4().hex[:12]}"  # never created
    fetcher_db.save_channel(channel, "s3", s3_config(stack, missing, "/exports/"))
    dagster.instance.add_dynamic_partitions(CHANNELS, [channel])
    run_id = launch_ui_run(dagster, channel, {})

    run = wait_for_run(dagster, run_id, timeout=120)
    assert run.status is dg.DagsterRunStatus.FAILURE, run.status

    with chromium_page(chromium, "operations-wrong-bucket-failure.png") as page:
        page.goto(f"{dagster.url}/runs/{run_id}")
        expect(page.get_by_text("the bucket does not exist").first).to_be_visible()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ARTIFACTS / "operations-wrong-bucket-run.png"))
        text = page.inner_text("body")
    # The message on the step's and on the run's failure, with its metadata; no stack.
    message = f"config error: cannot list s3://{missing}/exports/: the bucket does not exist"
    assert text.count(message) >= 3, text  # the job's log line, STEP_FAILURE, RUN_FAILURE
    for shown in ("error_class\nconfig", f"channel\n{channel}", "job_log\ns3://"):
        assert shown in text, shown
    assert "Traceback" not in text and "Stack Trace" not in text, text
    assert not re.search(r'File "[^"]+", line \d+', text), text


def test_dead_letters_show_on_their_asset_and_in_the_sensor_ticks(
    dagster: DagsterServer, chromium: str, module_bus: KafkaBus
) -> None:
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:6]
    unknown_type, no_config = f"dl-{tag}-gopher", f"dl-{tag}-noconfig"
    bad = [
        {"job_id": unknown_type, "channel_id": f"dl-{tag}", "source_type": "gopher"},
        # a channel never stored, and the message has no config to run on
        {"job_id": no_config, "channel_id": f"dl-{tag}-new", "source_type": "s3"},
    ]
    for message in bad:
        module_bus.publish(TOPICS.fetcher, json.dumps(message).encode(), key=b"dl")

    def observed() -> dict[str, dict[str, Any]] | None:
        """job_id -> its row in the dead-letter tables the sensor's ticks recorded."""
        records = dagster.instance.fetch_observations(DEAD_LETTERS, limit=20).records
        rows: dict[str, dict[str, Any]] = {}
        for record in records:
            observation = record.asset_observation
            assert observation is not None
            table = observation.metadata["dead_letters"].value
            rows |= {row.data["job_id"]: row.data for row in table.records}
        return rows if {unknown_type, no_config} <= rows.keys() else None

    rows = wait_for("the dead letters' observations", observed, timeout=60, server=dagster)
    assert "source_type" in rows[unknown_type]["reason"]
    assert "has no stored config" in rows[no_config]["reason"]
    latest = dagster.instance.fetch_observations(DEAD_LETTERS, limit=1).records[0]
    assert latest.asset_observation is not None
    metadata = {k: v.value for k, v in latest.asset_observation.metadata.items()}
    assert metadata["topic"] == TOPICS.dead_letter
    assert metadata["dead_letters_total"] >= 2 and metadata["dead_lettered"] >= 1

    with chromium_page(chromium, "operations-dead-letters-failure.png") as page:
        page.goto(f"{dagster.url}/assets/fetcher_dead_letters")
        expect(page.get_by_text("has no stored config").first).to_be_visible()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ARTIFACTS / "operations-dead-letters-asset.png"), full_page=True)
        asset_text = page.inner_text("body")

        page.goto(f"{dagster.url}/locations/{LOCATION}/sensors/kafka_fetcher_sensor")
        ticks = page.get_by_text(re.compile(r'\{"dead_letters": [1-9]\d*, '))
        expect(ticks.first).to_be_visible()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ARTIFACTS / "operations-dead-letters-ticks.png"))
    for shown in ("dead_lettered", "dead_letters_total", "latest_reason", no_config):
        assert shown in asset_text, shown
