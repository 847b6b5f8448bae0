"""channel_records end to end: a channel's fetch, its automation, and its records in Postgres."""

from __future__ import annotations

import json
import uuid
from typing import Any

import dagster as dg
import pytest

from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.definitions import defs
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from assets import channel_records
from tests.integration.harness import Harness
from tests.integration.test_s3_channel import (  # noqa: F401 (channel_client is a fixture)
    ChannelBuckets,
    channel_client,
    run_one,
    s3_message,
)

pytestmark = pytest.mark.integration

ATOM = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>n</title><entry><id>urn:e:1</id><title>E1</title><updated>2026-02-01T00:00:00Z</updated>
</entry><entry><id>urn:e:2</id><title>E2</title><updated>2026-02-02T00:00:00Z</updated></entry>
</feed>"""


def products(price: int) -> bytes:
    items = [{"sku": f"p{i}", "name": f"P{i}", "price": price if i == 2 else i} for i in (1, 2, 3)]
    return json.dumps({"results": items}).encode()


def materialize(harness: Harness, channel: str) -> dg.MaterializeResult[Any]:
    result = dg.materialize(
        [channel_records],
        partition_key=channel,
        resources=harness.resources(),
        instance=harness.instance,
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    return {k: v.value for k, v in meta.items()}  # type: ignore[return-value]


def test_fetch_then_records_once_unchanged_then_one_update(
    harness: Harness,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    channel_client: ChannelBuckets,  # noqa: F811
) -> None:
    files = {
        "exports/products.json": products(2),
        "exports/rows.csv": b"id,title\n1,R1\n2,R2\n",
        "exports/news.atom": ATOM,
    }
    bucket = channel_client.new(files)
    channel = f"rc-{uuid.uuid4().hex[:8]}"

    def fetch() -> None:
        message = s3_message(
            stack,
            job_id=f"job-{uuid.uuid4().hex[:8]}",
            channel_id=channel,
            bucket=bucket,
            file_pattern="**/*",
            records={"external_id": "sku", "title": "name"},
        )
        run = run_one(harness, message)
        assert run.status is dg.DagsterRunStatus.SUCCESS

    # Declarative automation asks for the channel's records once its files are materialized.
    before = dg.evaluate_automation_conditions(defs=defs, instance=harness.instance)
    fetch()
    evaluation = dg.evaluate_automation_conditions(
        defs=defs, instance=harness.instance, cursor=before.cursor
    )
    requested = evaluation.get_requested_partitions(channel_records.key)
    assert channel in requested

    first = materialize(harness, channel)
    assert first["amazoniax_status"] == "success"
    assert (first["records_extracted"], first["records_inserted"]) == (7, 7)
    assert first["items_in_table"] == 7

    fetch()  # the same files: nothing new delivered, nothing to load
    again = materialize(harness, channel)
    assert (again["records_inserted"], again["records_updated"], again["items_in_table"]) == (
        0,
        0,
        7,
    )

    channel_client.put_object(Bucket=bucket, Key="exports/products.json", Body=products(50))
    fetch()
    third = materialize(harness, channel)
    assert (third["records_inserted"], third["records_updated"]) == (0, 1)
    with fetcher_db.database.transaction() as sql:
        raw = sql.scalar(
            "SELECT raw FROM unified_items WHERE source_name = %s AND external_id = 'p2'",
            (channel,),
        )
        titles = sql.all(
            "SELECT title FROM unified_items WHERE source_name = %s ORDER BY id", (channel,)
        )
    assert raw["price"] == 50
    assert sorted(t for (t,) in titles) == ["E1", "E2", "P1", "P2", "P3", "R1", "R2"]
