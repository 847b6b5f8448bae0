"""Customer-bucket clients side by side: a boto3 client, botocore's signer over urllib3 (the
product's ``S3Reader``) and obstore (the product's ``ObstoreObjects``, GETs only), listing and
reading many small objects on SeaweedFS.

    uv run python -m bench.s3_client_ab                      # 10,000 x 10 KiB, 1,000 x 100 KiB
    uv run python -m bench.s3_client_ab --small 1000 --large 200 --repeats 1   # while developing
    uv run python -m bench.s3_client_ab --clients signer,obstore

Every client reads with the channel's keys, 16 GETs at a time (the engine's default
``max_workers``), each body read in 1 MiB pieces as the engine reads. Per phase and client:
wall time and CPU seconds (user + system; SeaweedFS is another process) of a fresh process
per client and repeat (client set-up is a phase of its own, without the imports: the
bench's helpers load boto3 and botocore before any client), repeats
alternating clients, medians; each client against the signer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Protocol
from urllib.parse import unquote_plus

from amazoniax_dagster.clients import s3 as s3util
from amazoniax_dagster.clients.s3_objects import ObstoreObjects
from amazoniax_dagster.clients.s3_reader import ReaderSettings, S3Reader
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from bench.common import (
    SOURCE_BUCKET,
    Row,
    admin_client,
    last_json_line,
    local_stack,
    median,
    object_key,
    print_table,
    put_objects,
    python_env,
    warm_bytecode,
    write_results,
)

CHUNK = 1024 * 1024
PARALLEL = 16


class Client(Protocol):
    def keys(self, bucket: str, prefix: str) -> Iterator[str]: ...

    def read(self, bucket: str, key: str) -> int: ...

    def close(self) -> None: ...


class Boto(Client):
    """A: a boto3 client (``clients.s3.make_client``), keys listed url-encoded and unquoted."""

    def __init__(self, ep: StackEndpoints) -> None:
        self._client = s3util.make_client(
            endpoint_url=ep.s3_endpoint_url,
            access_key_id=ep.channel_s3_access_key_id,
            secret_access_key=ep.channel_s3_secret_access_key,
            region=ep.s3_region,
            max_pool_connections=2 * PARALLEL,
        )

    def keys(self, bucket: str, prefix: str) -> Iterator[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, EncodingType="url"
        )
        for page in pages:
            for item in page.get("Contents", ()):
                yield unquote_plus(item["Key"])

    def read(self, bucket: str, key: str) -> int:
        body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
        total = 0
        while chunk := body.read(CHUNK):
            total += len(chunk)
        return total

    def close(self) -> None:
        self._client.close()


def _settings(ep: StackEndpoints) -> ReaderSettings:
    return ReaderSettings(
        endpoint_url=ep.s3_endpoint_url,
        access_key_id=ep.channel_s3_access_key_id,
        secret_access_key=ep.channel_s3_secret_access_key,
        region=ep.s3_region,
        max_connections=2 * PARALLEL,
    )


class Signer(Client):
    """B: the product's reader (``clients/s3_reader.py``): botocore's SigV4 signer over
    urllib3's connection pools, the two XML replies parsed by ``_parse_xml``."""

    def __init__(self, ep: StackEndpoints) -> None:
        self._reader = S3Reader(_settings(ep))

    def keys(self, bucket: str, prefix: str) -> Iterator[str]:
        return (o.key for o in self._reader.list_objects(bucket, prefix, what="list"))

    def read(self, bucket: str, key: str) -> int:
        stream = self._reader.get_object(bucket, key, what="get")
        total = 0
        while chunk := stream.read(CHUNK):
            total += len(chunk)
        return total

    def close(self) -> None:
        self._reader.close()


class Obstore(Signer):
    """C: what the product does for a key obstore sends byte for byte: listed by the signer
    (so its listing rows measure the signer again), read through obstore
    (``clients/s3_objects.py``)."""

    def __init__(self, ep: StackEndpoints) -> None:
        super().__init__(ep)
        self._objects = ObstoreObjects(SOURCE_BUCKET, _settings(ep))

    def read(self, bucket: str, key: str) -> int:
        stream = self._objects.get_object(key, what="get")
        total = 0
        while chunk := stream.read(CHUNK):
            total += len(chunk)
        return total


CLIENTS: dict[str, Callable[[StackEndpoints], Client]] = {
    "boto3": Boto,
    "signer": Signer,
    "obstore": Obstore,
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu


SET_UP = "set-up + first request"


def worker(name: str, ep: StackEndpoints, small: int, large: int) -> dict[str, list[float]]:
    """One client's phases in this (fresh) process: {phase: [wall, cpu]}."""
    small_keys = [object_key("small/", i) for i in range(small)]
    large_keys = [object_key("large/", i) for i in range(large)]
    made: list[Client] = []
    measured = {SET_UP: timed(lambda: _set_up(CLIENTS[name], ep, made))}
    client = made[0]
    phases: dict[str, Callable[[], object]] = {
        f"list {small:,} x 10 KiB": lambda: sum(1 for _ in client.keys(SOURCE_BUCKET, "small/")),
        f"GET {large:,} x 100 KiB": lambda: _read_all(client, large_keys),
        f"GET {small:,} x 10 KiB": lambda: _read_all(client, small_keys),
    }
    for phase, run in phases.items():
        measured[phase] = timed(run)
    client.close()
    return {phase: list(values) for phase, values in measured.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="objects of 10 KiB")
    parser.add_argument("--large", type=int, default=1_000, help="objects of 100 KiB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", default=",".join(CLIENTS), help="of " + ",".join(CLIENTS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # NAME: run one client, print JSON
    args = parser.parse_args()
    if args.worker:
        ep = StackEndpoints(**json.loads(os.environ["BENCH_AB_STACK"]))
        print(json.dumps(worker(args.worker, ep, args.small, args.large)))
        return
    warm_bytecode()
    with local_stack("s3-ab", services=("s3",)) as (ep, _):
        admin = admin_client(ep)
        put_objects(
            admin, SOURCE_BUCKET, [object_key("small/", i) for i in range(args.small)], 10 * 1024
        )
        put_objects(
            admin, SOURCE_BUCKET, [object_key("large/", i) for i in range(args.large)], 100 * 1024
        )
        print(f"seeded {args.small} x 10 KiB and {args.large} x 100 KiB", flush=True)
        env = python_env() | {"BENCH_AB_STACK": json.dumps(asdict(ep))}
        names = [name.strip() for name in args.clients.split(",")]
        if "signer" not in names or any(name not in CLIENTS for name in names):
            parser.error(f"--clients: signer and any of {', '.join(CLIENTS)}")
        runs: dict[str, list[dict[str, list[float]]]] = {name: [] for name in names}
        for _ in range(args.repeats):
            for name in names:
                command = [sys.executable, "-m", "bench.s3_client_ab", "--worker", name]
                command += ["--small", str(args.small), "--large", str(args.large)]
                out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                runs[name].append(last_json_line(out.stdout))
                print(name, runs[name][-1], flush=True)
        rows = []
        for phase in runs["signer"][0]:
            for index, kind in ((0, "wall"), (1, "CPU")):
                signer = [run[phase][index] for run in runs["signer"]]
                for name in names:
                    if name == "signer":
                        continue
                    other = [run[phase][index] for run in runs[name]]
                    rows.append(
                        Row(
                            f"{phase}, {kind}: {name}",
                            median(other),
                            median(signer),
                            "s",
                            "-",
                            extra={name: other, "signer": signer},
                        )
                    )
        print_table("customer S3 clients, each against the signer (S3Reader)", rows)
        write_results("s3_client_ab", vars(args), rows)


def _set_up(
    make: Callable[[StackEndpoints], Client], ep: StackEndpoints, made: list[Client]
) -> None:
    """A new client and one (empty) listing: what every job pays once."""
    made.append(make(ep))
    list(made[0].keys(SOURCE_BUCKET, "nothing-here/"))


def _read_all(client: Client, keys: list[str]) -> int:
    with ThreadPoolExecutor(PARALLEL) as pool:
        return sum(pool.map(lambda key: client.read(SOURCE_BUCKET, key), keys))


if __name__ == "__main__":
    main()
