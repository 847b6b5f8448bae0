"""Generation and heal end to end, with no LLM: a new site gets a fetcher generated from a
Chromium capture (as a fetcher_code run), published as _v1 and used in the same run; when the
site changes, the channel's run fails as site changed, heal mode generates, validates and
publishes _v2 and the channel runs on it; a site that lost its data ends in human review
with the last good version still mapped. A candidate unlike the channels' history fails
validation and stays on its candidates/ branch."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings
from amazoniax_dagster.core.fetcher_names import candidate_branch
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.sites import structure_id
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.demo_sites import CATALOG, RunningSite, serve
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.fetchers.registry import FetcherRepo
from fetcher_codegen import generator
from tests.integration.harness import Harness, end_offsets, read_json
from tests.integration.test_s3_channel import objects_under

TOPICS = Topics()
LOOPBACK = NetworkPolicy.from_env("127.0.0.0/8")


def _message(site: RunningSite, channel: str, job: str, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": job,
        "channel_id": channel,
        "source_type": CATALOG[site.name].source_type,
        "config": site.channel_config(),
    } | extra


def _run_one(harness: Harness, expected_job: str) -> tuple[dg.RunRequest, dg.DagsterRun]:
    result = harness.tick()
    (request,) = result.run_requests or []
    assert request.job_name == expected_job
    (run,) = harness.run_all(result)
    return request, run


def _checks(harness: Harness, run: dg.DagsterRun) -> dict[str, bool]:
    return {name: bool(data.passed) for name, data in harness.asset_checks(run).items()}


def _job(fetcher_db: FetcherDB, job_id: str) -> Any:
    record = fetcher_db.get_job(job_id)
    assert record is not None, f"job {job_id} was not recorded"
    return record


def test_a_new_site_is_generated_then_healed_then_handed_to_a_person(
    harness: Harness,
    fetcher_db: FetcherDB,
    stack: StackEndpoints,
    output_client: Any,
    bus: KafkaBus,
) -> None:
    with serve("js_xhr") as site:
        site_id = structure_id(site.url)
        channel = f"ch-{uuid.uuid4().hex[:8]}"
        status_from = end_offsets(bus, TOPICS.status)

        # 1. A new site: generated, proved, validated, published as v1, fetched in the same run.
        job1 = f"job-{uuid.uuid4().hex[:8]}"
        harness.produce(_message(site, channel, job1, is_new=True), key=channel)
        request, run1 = _run_one(harness, "fetcher_code_job")
        assert request.partition_key == site_id
        assert harness.instance.has_dynamic_partition("sites", site_id)
        assert run1.status is dg.DagsterRunStatus.SUCCESS
        # The five ops run in the run's own process: no step subprocess start per op.
        events = harness.instance.all_logs(run1.run_id)
        step_pids = {e.dagster_event.pid for e in events if e.step_key and e.dagster_event} - {None}
        assert len(step_pids) == 1, step_pids
        # The fetcher's checks, and the channel's own: its files came in the same run.
        assert _checks(harness, run1) == {
            "reproduces_capture": True,
            "validated_on_mapped_channels": True,
            "files_well_formed": True,
            "not_empty_where_history_has_data": True,
        }
        proof = {
            key: value.value
            for key, value in harness.asset_checks(run1)["reproduces_capture"].metadata.items()
        }
        assert proof["record_values_checked"] > 0  # the proof's own counts, not a default
        assert proof["record_values_missing"] == 0
        v1 = fetcher_db.latest_fetcher(site_id)
        assert v1 is not None and v1.version == 1
        mapped = fetcher_db.channel_fetcher(channel)
        assert mapped is not None and mapped.fetcher_name == v1.fetcher_name
        assert _job(fetcher_db, job1).status == "success"
        files = objects_under(output_client, stack.output_bucket, f"raw/{channel}/{job1}/")
        text = b"".join(files.values()).decode()
        assert all(str(r["id"]) in text for r in site.ground_truth())

        # 2. The site moves its API: the existing channel fails as site changed, heal requested.
        site.variant = "v2"
        job2 = f"job-{uuid.uuid4().hex[:8]}"
        fetcher_from = end_offsets(bus, TOPICS.fetcher)
        harness.produce(_message(site, channel, job2), key=channel)
        _, run2 = _run_one(harness, "channel_files_job")
        assert run2.status is dg.DagsterRunStatus.FAILURE
        assert _job(fetcher_db, job2).metadata["error_class"] == "site_changed"
        heal = [m for m in read_json(bus, TOPICS.fetcher, fetcher_from) if m.get("heal_mode")]
        assert [m["job_id"] for m in heal] == [f"{job2}-heal1"]

        # 3. Heal mode: v2 is generated, validated against the channel's history, published.
        request3, run3 = _run_one(harness, "fetcher_code_job")
        assert request3.tags["amazoniax/flow"] == "heal"
        assert run3.status is dg.DagsterRunStatus.SUCCESS
        v2 = fetcher_db.latest_fetcher(site_id)
        assert v2 is not None and v2.version == 2
        mapped = fetcher_db.channel_fetcher(channel)
        assert mapped is not None and mapped.fetcher_name == v2.fetcher_name
        assert _job(fetcher_db, f"{job2}-heal1").status == "success"

        # 4. The site loses its data: heal attempts fail, v2 stays mapped, a person is asked.
        site.variant = "broken"
        job4 = f"job-{uuid.uuid4().hex[:8]}"
        harness.produce(_message(site, channel, job4), key=channel)
        _, run4 = _run_one(harness, "channel_files_job")
        assert run4.status is dg.DagsterRunStatus.FAILURE
        assert _job(fetcher_db, job4).metadata["error_class"] == "site_changed"
        for attempt in (1, 2):
            _, heal_run = _run_one(harness, "fetcher_code_job")
            assert heal_run.status is dg.DagsterRunStatus.FAILURE
            assert _job(fetcher_db, f"{job4}-heal{attempt}").metadata["error_class"] in (
                "no_fetcher",
                "validation_failed",
                "fetcher_code",
            )
        assert not (harness.tick().run_requests or []), "no third heal attempt"
        final = _job(fetcher_db, f"{job4}-heal2")
        assert final.status == "requires_human_review"
        latest = fetcher_db.latest_fetcher(site_id)
        assert latest is not None and latest.version == 2
        mapped = fetcher_db.channel_fetcher(channel)
        assert mapped is not None and mapped.fetcher_name == v2.fetcher_name

    statuses = {m["job_id"]: m for m in read_json(bus, TOPICS.status, status_from)}
    assert statuses[job1]["status"] == "success"
    assert statuses[f"{job2}-heal1"]["status"] == "success"
    assert statuses[f"{job4}-heal2"]["status"] == "requires_human_review"
    assert "requires human review" in statuses[f"{job4}-heal2"]["message"]


@pytest.fixture()
def output(stack: StackEndpoints) -> OutputBucket:
    return OutputBucket(
        OutputSettings(
            bucket=stack.output_bucket,
            endpoint_url=stack.s3_endpoint_url,
            access_key_id=stack.s3_access_key_id,
            secret_access_key=stack.s3_secret_access_key,
            region=stack.s3_region,
        )
    )


def test_a_candidate_unlike_the_channels_history_is_kept_on_a_branch_not_published(
    fetcher_db: FetcherDB, output: OutputBucket, stack: StackEndpoints, tmp_path: Path
) -> None:
    with serve("html_list") as site:
        site_id = structure_id(site.url)
        channel = f"ch-{uuid.uuid4().hex[:8]}"
        fetcher_db.save_channel(channel, "html", site.channel_config())
        # The channel's history: JSON files, nothing like the catalog pages of this site.
        job = f"job-{uuid.uuid4().hex[:8]}"
        fetcher_db.start_job(
            job_id=job, channel_id=channel, source_type="html", flow="new", run_id=None
        )
        key = output.key_for(channel, job, "orders_1.json")
        output.put_bytes(key, json.dumps({"orders": [{"sku": 1}]}).encode())
        fetcher_db.finish_job(
            job, status="success", message="ok", metadata={"new": 1, "duplicate": 0}
        )
        _record_delivered(fetcher_db, job, channel, "orders_1.json", key)

        settings = generator.CodegenSettings()
        captured = generator.capture(
            generator.channel_config(fetcher_db, channel), policy=LOOPBACK, settings=settings
        )
        candidate = generator.synthesize(
            site_id, generator.channel_config(fetcher_db, channel), captured,
            policy=LOOPBACK, settings=settings,
        )  # fmt: skip
        assert candidate.proved
        assert not captured.work_dir.exists(), "the capture (with its HAR) is deleted"
        report = generator.validate(
            candidate, db=fetcher_db, output=output, trigger_channel=channel,
            policy=LOOPBACK, settings=settings,
        )  # fmt: skip
        assert not report.passed
        (verdict,) = report.verdicts
        assert verdict.channel_id == channel and not verdict.passed
        assert "| FAIL |" in report.table()

        repo = FetcherRepo(tmp_path / "cache", remote_url=stack.fetchers_remote_url)
        repo.sync()
        kept = generator.reject(candidate, report, db=fetcher_db, repo=repo)
        assert kept.status == "rejected"
        assert fetcher_db.latest_fetcher(site_id) is None
        with pytest.raises(Exception, match="not published"):
            generator.fail_validation(candidate, report, kept)
        branches = repo_branches(stack.fetchers_remote_url)
        assert candidate_branch(kept.fetcher_name) in branches


def _record_delivered(db: FetcherDB, job: str, channel: str, path: str, key: str) -> None:
    with db.database.transaction() as sql:
        sql.execute(
            "INSERT INTO file_metadata (job_id, channel_id, file_path, s3_key, content_hash,"
            " file_size, classification) VALUES (%s, %s, %s, %s, %s, 10, 'new')",
            (job, channel, path, key, "0" * 64),
        )


def repo_branches(remote_url: str) -> set[str]:
    import subprocess

    out = subprocess.run(
        ["git", "ls-remote", "--heads", remote_url], capture_output=True, text=True, check=True
    ).stdout
    return {line.split("refs/heads/", 1)[1] for line in out.splitlines() if "refs/heads/" in line}
