"""The sync engine on the real S3 store: large files stream into multipart uploads while they
download, and every way such a file can end (kept, duplicate, quarantined, failed, short)
leaves exactly the objects it should and no unfinished upload behind."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import pytest

from amazoniax_dagster.clients.output_bucket import PARTS_IN_FLIGHT, OutputBucket, OutputSettings
from amazoniax_dagster.core.errors import TransientError
from amazoniax_dagster.core.messages import S3SourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.retry import RetryPolicy
from amazoniax_dagster.db import ChannelHistory
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.jobs.file_job import validator_for
from amazoniax_dagster.sources.base import RemoteFile
from amazoniax_dagster.sources.s3 import S3Source
from amazoniax_dagster.sync.engine import Classification, SyncEngine
from amazoniax_dagster.sync.transfer import MIB
from tests.integration.faults import FaultPlan, flaky_proxy

pytestmark = pytest.mark.integration

LOCAL = NetworkPolicy.from_env("127.0.0.0/8")
PART = 5 * MIB  # S3's smallest part: a 13 MiB file is three parts
BIG = os.urandom(13 * MIB)


@pytest.fixture()
def customer_bucket(stack: StackEndpoints, output_client: Any) -> str:
    bucket = f"stream-{uuid.uuid4().hex[:10]}"
    output_client.create_bucket(Bucket=bucket)
    return bucket


def put(client: Any, bucket: str, files: dict[str, bytes]) -> None:
    for key, body in files.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


def source_for(stack: StackEndpoints, bucket: str, endpoint: str | None = None) -> S3Source:
    config = S3SourceConfig(
        bucket=bucket,
        remote_path="exports/",
        file_pattern="**",
        endpoint_url=endpoint or stack.s3_endpoint_url,
        region=stack.s3_region,
        access_key=stack.s3_access_key_id,
        secret_access_key=stack.s3_secret_access_key,
    )
    return S3Source(config, policy=LOCAL)


def output_for(stack: StackEndpoints, endpoint: str | None = None) -> OutputBucket:
    return OutputBucket(
        OutputSettings(
            bucket=stack.output_bucket,
            prefix="streaming",
            endpoint_url=endpoint or stack.s3_endpoint_url,
            access_key_id=stack.s3_access_key_id,
            secret_access_key=stack.s3_secret_access_key,
            region=stack.s3_region,
        )
    )


def engine(source: Any, output: OutputBucket, **kwargs: Any) -> SyncEngine:
    checks = S3SourceConfig(bucket="checks", invalid_files=kwargs.pop("invalid_files", "flag"))
    return SyncEngine(
        source,
        output,
        retry=kwargs.pop("retry", RetryPolicy(retries=2, delay_seconds=0)),
        validate=validator_for(checks),
        quarantine_invalid=checks.invalid_files == "quarantine",
        part_size=PART,
        **kwargs,
    )


def objects(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            found[obj["Key"][len(prefix) :]] = body
    return found


def unfinished_uploads(client: Any, bucket: str, prefix: str) -> list[str]:
    reply = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return [upload["Key"] for upload in reply.get("Uploads", [])]


@contextmanager
def job(stack: StackEndpoints) -> Iterator[tuple[str, str]]:
    channel, job_id = f"ch-{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex[:8]}"
    yield channel, job_id


def test_a_large_file_streams_in_parts_and_arrives_whole(
    stack: StackEndpoints, output_client: Any, customer_bucket: str
) -> None:
    put(output_client, customer_bucket, {"exports/big.bin": BIG, "exports/a.csv": b"id\n1\n"})
    output = output_for(stack)
    with job(stack) as (channel, job_id):
        result = engine(source_for(stack, customer_bucket), output).run(
            channel_id=channel, job_id=job_id, history=ChannelHistory()
        )
    folder = f"streaming/{channel}/{job_id}/"
    assert objects(output_client, stack.output_bucket, folder) == {
        "big.bin": BIG,
        "a.csv": b"id\n1\n",
    }
    by_path = {o.remote.relative_path: o for o in result.outcomes}
    assert by_path["big.bin"].classification is Classification.NEW
    assert by_path["big.bin"].content_hash == hashlib.sha256(BIG).hexdigest()
    head = output_client.head_object(Bucket=stack.output_bucket, Key=f"{folder}big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # three parts, sent while downloading
    small = output_client.head_object(Bucket=stack.output_bucket, Key=f"{folder}a.csv")
    assert small["Metadata"]["sha256"] == hashlib.sha256(b"id\n1\n").hexdigest()
    assert unfinished_uploads(output_client, stack.output_bucket, folder) == []


def test_a_large_duplicate_is_dropped_before_it_becomes_an_object(
    stack: StackEndpoints, output_client: Any, customer_bucket: str
) -> None:
    put(output_client, customer_bucket, {"exports/copy-of-big.bin": BIG})
    history = ChannelHistory(
        latest_hash_by_path={"big.bin": hashlib.sha256(BIG).hexdigest()},
        delivered_hashes={hashlib.sha256(BIG).hexdigest()},
    )
    with job(stack) as (channel, job_id):
        result = engine(source_for(stack, customer_bucket), output_for(stack)).run(
            channel_id=channel, job_id=job_id, history=history
        )
    (outcome,) = result.outcomes
    assert outcome.classification is Classification.DUPLICATE and outcome.s3_key is None
    prefix = f"streaming/{channel}/"
    assert objects(output_client, stack.output_bucket, prefix) == {}
    assert unfinished_uploads(output_client, stack.output_bucket, prefix) == []


def test_the_first_upload_is_announced_once_and_a_run_without_uploads_announces_none(
    stack: StackEndpoints, output_client: Any, customer_bucket: str
) -> None:
    # The job warms its Kafka producer on this signal: only a run that uploads publishes.
    files = {f"exports/{n}.csv": f"id\n{n}\n".encode() for n in range(5)}
    put(output_client, customer_bucket, files)
    calls: list[str] = []
    with job(stack) as (channel, job_id):
        result = engine(
            source_for(stack, customer_bucket),
            output_for(stack),
            max_workers=4,
            on_first_upload=lambda: calls.append("first upload"),
        ).run(channel_id=channel, job_id=job_id, history=ChannelHistory())
    assert len(result.uploaded) == 5 and calls == ["first upload"]

    delivered = {hashlib.sha256(body).hexdigest() for body in files.values()}
    calls.clear()
    with job(stack) as (channel, job_id):
        result = engine(
            source_for(stack, customer_bucket),
            output_for(stack),
            on_first_upload=lambda: calls.append("first upload"),
        ).run(channel_id=channel, job_id=job_id, history=ChannelHistory(delivered_hashes=delivered))
    assert result.uploaded == [] and calls == []


def test_the_history_may_still_be_loading_while_the_source_is_listed(
    stack: StackEndpoints, output_client: Any, customer_bucket: str
) -> None:
    put(
        output_client,
        customer_bucket,
        {"exports/old.csv": b"id\n1\n", "exports/new.csv": b"id\n2\n"},
    )
    history: Future[ChannelHistory] = Future()
    resolved: list[float] = []

    def resolve() -> None:
        resolved.append(time.monotonic())
        delivered = {hashlib.sha256(b"id\n1\n").hexdigest()}
        history.set_result(ChannelHistory(delivered_hashes=delivered))

    source = source_for(stack, customer_bucket)
    listed: list[float] = []
    real_list = source.list_files

    def list_files() -> Iterator[Any]:
        listed.append(time.monotonic())
        return real_list()

    source.list_files = list_files  # type: ignore[method-assign]
    timer = threading.Timer(1.0, resolve)
    timer.start()
    with job(stack) as (channel, job_id):
        result = engine(source, output_for(stack)).run(
            channel_id=channel, job_id=job_id, history=history
        )
    timer.join()
    assert listed[0] < resolved[0]  # listing did not wait for the history
    by_path = {o.remote.relative_path: o.classification for o in result.outcomes}
    assert by_path == {"old.csv": Classification.DUPLICATE, "new.csv": Classification.NEW}


def test_a_large_invalid_file_goes_to_quarantine_not_to_the_job_folder(
    stack: StackEndpoints, output_client: Any, customer_bucket: str
) -> None:
    broken = b'{"rows": [' + b"1," * (6 * MIB) + b"oops"  # 12 MiB of JSON that never closes
    put(output_client, customer_bucket, {"exports/big.json": broken})
    with job(stack) as (channel, job_id):
        result = engine(
            source_for(stack, customer_bucket), output_for(stack), invalid_files="quarantine"
        ).run(channel_id=channel, job_id=job_id, history=ChannelHistory())
    (outcome,) = result.outcomes
    assert outcome.invalid and outcome.quarantined
    prefix = f"streaming/{channel}/"
    assert objects(output_client, stack.output_bucket, prefix) == {
        f"_quarantine/{job_id}/big.json": broken
    }
    assert unfinished_uploads(output_client, stack.output_bucket, prefix) == []


def test_a_failed_job_removes_its_uploads_and_leaves_no_unfinished_parts(
    stack: StackEndpoints, output_client: Any, customer_bucket: str
) -> None:
    put(
        output_client,
        customer_bucket,
        {"exports/big.bin": BIG, "exports/ok.csv": b"1\n", "exports/zz-bad.csv": b"2\n"},
    )
    plan = FaultPlan(
        matches=lambda method, path: method == "GET" and path.endswith("/zz-bad.csv"),
        failures=1_000,
    )
    with flaky_proxy(stack.s3_endpoint_url, plan) as proxy, job(stack) as (channel, job_id):
        sync = engine(source_for(stack, customer_bucket, proxy), output_for(stack))
        with pytest.raises(TransientError, match="SlowDown"):
            sync.run(channel_id=channel, job_id=job_id, history=ChannelHistory())
    prefix = f"streaming/{channel}/"
    assert objects(output_client, stack.output_bucket, prefix) == {}
    assert unfinished_uploads(output_client, stack.output_bucket, prefix) == []
    assert plan.failed == 3  # the first try and two retries


def test_a_part_refused_once_is_sent_again(
    stack: StackEndpoints, output_client: Any, customer_bucket: str
) -> None:
    put(output_client, customer_bucket, {"exports/big.bin": BIG})
    plan = FaultPlan(
        matches=lambda method, path: method == "PUT" and "partNumber=2&" in path, failures=1
    )
    with flaky_proxy(stack.s3_endpoint_url, plan) as proxy, job(stack) as (channel, job_id):
        retry = RetryPolicy(retries=2, delay_seconds=0)
        engine(source_for(stack, customer_bucket), output_for(stack, proxy), retry=retry).run(
            channel_id=channel, job_id=job_id, history=ChannelHistory()
        )
    # The part is sent again by obstore's own request retries (the product's policy is for
    # whole calls): the object is complete all the same.
    assert plan.failed == 1
    folder = f"streaming/{channel}/{job_id}/"
    assert objects(output_client, stack.output_bucket, folder) == {"big.bin": BIG}


class ShortSource:
    """A source whose file ends before the size its listing promised (a cut connection)."""

    location = "memory://short"

    def __init__(self, data: bytes, listed: int) -> None:
        self.data, self.listed, self.opened = data, listed, 0

    def list_files(self) -> Iterator[RemoteFile]:
        yield RemoteFile("short.bin", "short.bin", self.listed)

    @contextmanager
    def open(self, remote: RemoteFile) -> Iterator[io.BytesIO]:
        self.opened += 1
        yield io.BytesIO(self.data)

    def close(self) -> None:
        pass


def test_a_large_file_shorter_than_listed_is_retried_then_fails_without_leftovers(
    stack: StackEndpoints, output_client: Any
) -> None:
    source = ShortSource(BIG[: 12 * MIB], listed=len(BIG))
    with job(stack) as (channel, job_id):
        with pytest.raises(TransientError, match="listing said"):
            engine(source, output_for(stack)).run(
                channel_id=channel, job_id=job_id, history=ChannelHistory()
            )
    assert source.opened == 3
    prefix = f"streaming/{channel}/"
    assert objects(output_client, stack.output_bucket, prefix) == {}
    assert unfinished_uploads(output_client, stack.output_bucket, prefix) == []


def test_memory_stays_flat_for_a_file_many_times_the_part_buffers(
    stack: StackEndpoints, output_client: Any, customer_bucket: str
) -> None:
    size = 60 * MIB
    data = os.urandom(size)
    put(output_client, customer_bucket, {"exports/huge.bin": data})
    del data
    # The clients' one-time cost (botocore's S3 model and endpoint rules) is paid before
    # tracing: what is measured is what grows with the file.
    source = source_for(stack, customer_bucket)
    list(source.list_files())
    output = output_for(stack)
    tracemalloc.start()
    try:
        with job(stack) as (channel, job_id):
            engine(source, output, part_buffers=3).run(
                channel_id=channel, job_id=job_id, history=ChannelHistory()
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Three 5 MiB part buffers, the parts obstore holds (PARTS_IN_FLIGHT in flight, one being
    # taken, one being read) and 1 MiB read chunks: bounded, and far below the file's 60 MiB.
    bound = (3 + PARTS_IN_FLIGHT + 2) * 5 * MIB + 2 * MIB
    assert peak < bound, f"peak {peak / MIB:.1f} MiB"
    head = output_client.head_object(
        Bucket=stack.output_bucket, Key=f"streaming/{channel}/{job_id}/huge.bin"
    )
    assert head["ContentLength"] == size
