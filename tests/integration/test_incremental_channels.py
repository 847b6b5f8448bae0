"""An API channel with a timestamp checkpoint, on the real stack: the first job fetches
everything, the next asks only for records after the checkpoint, a failed job leaves the
checkpoint where it was, and the checkpoint shows in the ``channel_files`` materialization
and in ``amazoniax channels checkpoint``, which can also reset it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pytest

from amazoniax_dagster.core.checkpoints import Checkpoint
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.demo_sites import RunningSite, serve
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from tests.integration.changes_site import ChangesSite
from tests.integration.harness import Harness
from tests.integration.test_cli import invoke
from tests.integration.test_web_channels import publisher, run

__all__ = ["publisher"]  # the fixture, used by name

RECIPE = """
version: 1
kind: http
name: changes
steps:
  - name: changes
    request: {url: /api/changes}
    records: items
    paginate: {type: page_number, param: page, has_more_path: has_more}
    incremental: {cursor_path: updated_at, start_param: updated_since}
    save: [{type: body, name: "changes_${page}.json"}]
"""


@pytest.fixture()
def site() -> Iterator[RunningSite]:
    with serve(ChangesSite()) as running:
        yield running


def job(harness: Harness, site: RunningSite, channel: str) -> tuple[str, dg.DagsterRun, int]:
    """Run one job of ``channel``; its id, its run and the site requests it made."""
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    before = len(site.requests)
    msg = {
        "job_id": job_id,
        "channel_id": channel,
        "source_type": "api",
        "is_new": False,
        "config": site.channel_config(),
    }
    return job_id, run(harness, msg), before


def asked_since(site: RunningSite, before: int) -> list[str | None]:
    """The updated_since each request of the site since ``before`` carried (None: absent)."""
    found = []
    for _, target in site.requests[before:]:
        values = parse_qs(urlsplit(target).query).get("updated_since")
        found.append(values[0] if values else None)
    return found


def materialized(harness: Harness, run_id: str) -> dict[str, Any]:
    (event,) = harness.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    assert event.asset_materialization is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_a_timestamp_checkpoint_advances_only_when_a_job_succeeds(
    site: RunningSite,
    publisher: Any,
    harness: Harness,
    fetcher_db: FetcherDB,
    stack: StackEndpoints,
) -> None:
    publisher(site, RECIPE)
    channel = f"ch-{uuid.uuid4().hex[:8]}"
    records = site.ground_truth()

    # Job 1: no checkpoint yet, so every record, without updated_since.
    job1, run1, before = job(harness, site, channel)
    assert run1.status is dg.DagsterRunStatus.SUCCESS
    assert asked_since(site, before) == [None] * 3
    first = Checkpoint("timestamp", records[-1]["updated_at"])
    assert fetcher_db.checkpoint(channel) == first
    record1 = fetcher_db.get_job(job1)
    assert record1 is not None and record1.metadata["records"] == len(records)
    shown = materialized(harness, run1.run_id)
    assert shown["checkpoint"] == first.value and shown["checkpoint_started_after"] == "(none)"

    # Job 2: four new records; one request, after the checkpoint, and only those four.
    site.site.advance(4)
    job2, run2, before = job(harness, site, channel)
    assert run2.status is dg.DagsterRunStatus.SUCCESS
    assert asked_since(site, before) == [first.value]
    record2 = fetcher_db.get_job(job2)
    assert record2 is not None and record2.metadata["records"] == 4
    second = Checkpoint("timestamp", site.ground_truth()[-1]["updated_at"])
    assert fetcher_db.checkpoint(channel) == second

    # Job 3: twelve new records, but page 2 fails after the retries: the checkpoint stays.
    site.site.advance(12)
    site.fail_next(4, status=500, retry_after=None, path_prefix="/api/changes?page=2")
    job3, run3, before = job(harness, site, channel)
    assert run3.status is dg.DagsterRunStatus.FAILURE and site.site.pending_faults == 0
    assert set(asked_since(site, before)) == {second.value}
    record3 = fetcher_db.get_job(job3)
    assert record3 is not None and record3.status == "failed"
    assert fetcher_db.checkpoint(channel) == second

    # Job 4 asks again from the old checkpoint and gets all twelve.
    job4, run4, before = job(harness, site, channel)
    assert run4.status is dg.DagsterRunStatus.SUCCESS
    assert asked_since(site, before) == [second.value, second.value]
    record4 = fetcher_db.get_job(job4)
    assert record4 is not None and record4.metadata["records"] == 12
    third = Checkpoint("timestamp", site.ground_truth()[-1]["updated_at"])
    assert fetcher_db.checkpoint(channel) == third
    assert materialized(harness, run4.run_id)["checkpoint_started_after"] == second.value

    # The operator sees it, and can make the next job start from the beginning.
    shown_by_cli = invoke(["channels", "checkpoint", channel], stack.env())
    assert shown_by_cli.output.strip() == f"{channel}: timestamp {third.value}"
    reset = invoke(["channels", "checkpoint", channel, "--reset"], stack.env())
    assert reset.exit_code == 0 and fetcher_db.checkpoint(channel) is None
