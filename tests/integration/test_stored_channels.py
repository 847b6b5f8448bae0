"""Stored channels become partitions, and scheduled channels run without Kafka messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from amazoniax_dagster.clients import s3 as s3util
from amazoniax_dagster.core import run_tags
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.definitions import defs
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from sensors import stored_channels_sensor
from tests.integration.harness import Harness

pytestmark = pytest.mark.integration


def evaluate(harness: Harness, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=harness.instance,
        cursor=cursor,
        definitions=defs,
        resources={"fetcher_db": harness.resources()["fetcher_db"]},
    ) as context:
        result = stored_channels_sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        harness.instance.add_dynamic_partitions(
            request.partitions_def_name, list(request.partition_keys)
        )
    return result


def test_a_scheduled_channel_runs_on_its_cadence(
    harness: Harness, stack: StackEndpoints, fetcher_db: FetcherDB, output_client: Any
) -> None:
    bucket = f"sched-{uuid.uuid4().hex[:10]}"
    output_client.create_bucket(Bucket=bucket)
    customer = s3util.make_client(
        endpoint_url=stack.s3_endpoint_url,
        access_key_id=stack.channel_s3_access_key_id,
        secret_access_key=stack.channel_s3_secret_access_key,
        region=stack.s3_region,
    )
    customer.put_object(Bucket=bucket, Key="in/a.csv", Body=b"a\n1\n")
    scheduled = f"every-minute-{uuid.uuid4().hex[:6]}"
    unscheduled = f"on-demand-{uuid.uuid4().hex[:6]}"
    config = {
        "bucket": bucket,
        "remote_path": "in",
        "endpoint_url": stack.s3_endpoint_url,
        "access_key": stack.channel_s3_access_key_id,
        "secret_access_key": stack.channel_s3_secret_access_key,
    }
    fetcher_db.save_channel(scheduled, "s3", config | {"schedule": "* * * * *"})
    fetcher_db.save_channel(unscheduled, "s3", config)

    two_minutes_ago = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    result = evaluate(harness, two_minutes_ago)
    assert harness.instance.has_dynamic_partition("channels", scheduled)
    assert harness.instance.has_dynamic_partition("channels", unscheduled)
    requests = [r for r in result.run_requests or [] if r.partition_key == scheduled]
    assert len(requests) == 1  # several missed ticks, one run
    (request,) = requests
    assert request.run_key is not None and request.run_key.startswith(f"sched-{scheduled}-")
    assert not [r for r in result.run_requests or [] if r.partition_key == unscheduled]

    run = harness.launch(request)
    assert run.status is dg.DagsterRunStatus.SUCCESS
    assert [f.file_path for f in fetcher_db.job_files(request.tags[run_tags.JOB_ID])] == ["a.csv"]

    # Evaluated again from the new cursor: the same tick is never due twice (a new minute
    # may have begun meanwhile, which is a new tick).
    again = evaluate(harness, result.cursor)
    assert all(r.run_key != request.run_key for r in again.run_requests or [])
