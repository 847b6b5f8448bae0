"""Kafka sensor throughput: messages handled per second by ``kafka_fetcher_sensor`` ticks.

    uv run python -m bench.sensor                      # 10,000 messages
    uv run python -m bench.sensor --messages 2000

``--messages`` valid job messages (S3 configs over ``--channels`` channels) are produced to
``amazoniax_fetcher``; the sensor is then evaluated with ``dagster.build_sensor_context``
exactly as ``tests/integration/harness.py`` does (its ``Harness.tick``), tick after tick until
every message became a run request. Then, ``--delay-samples`` times, one message is produced
and ticks run back to back until its run is requested: produce → run requested delay (the
daemon adds up to ``minimum_interval_seconds`` = 5 s on top; not measured here). The Dagster
instance is a local temp (SQLite) instance; the fetcher DB is the stack's PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

import dagster as dg
from confluent_kafka import Producer

from amazoniax_dagster.clients.kafka import KafkaBus
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from bench.common import Row, local_stack, print_table, s3_channel_config, write_results
from resources.kafka import KafkaResource
from tests.integration.harness import Harness

TARGET_MSG_S = 1000.0


def message(ep: StackEndpoints, channel: str) -> dict[str, Any]:
    return {
        "job_id": f"job-{uuid.uuid4().hex}",
        "channel_id": channel,
        "source_type": "s3",
        "is_new": False,
        "heal_mode": False,
        "config": s3_channel_config(ep, "data/"),
    }


def produce_many(ep: StackEndpoints, topic: str, count: int, channels: int) -> float:
    producer = Producer({"bootstrap.servers": ep.kafka_bootstrap, "acks": "all", "linger.ms": 20})
    started = time.perf_counter()
    for i in range(count):
        channel = f"bench-ch-{i % channels:04d}"
        producer.produce(topic, json.dumps(message(ep, channel)).encode(), key=channel.encode())
        producer.poll(0)
    producer.flush()
    return time.perf_counter() - started


def requested(result: dg.SensorResult) -> int:
    return len(result.run_requests or [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=100)
    per_tick = KafkaResource.model_fields["max_messages_per_tick"].default
    parser.add_argument(
        "--per-tick", type=int, default=per_tick, help=f"KafkaResource default: {per_tick}"
    )
    parser.add_argument("--delay-samples", type=int, default=5)
    args = parser.parse_args(argv)
    with local_stack("sensor", services=("kafka", "postgres")) as (ep, workdir):
        os.environ.update(ep.env())  # as the integration tests' stack_env fixture does
        db = FetcherDB(ep.database_url, SecretCipher(ep.secret_key))
        db.migrate()
        bus = KafkaBus(ep.kafka_bootstrap, client_id="bench")
        (workdir / "dagster_home").mkdir()
        with dg.DagsterInstance.local_temp(str(workdir / "dagster_home")) as instance:
            harness = Harness(ep, instance, bus, max_messages_per_tick=args.per_tick)
            harness.start_at_end()
            produce_s = produce_many(ep, harness.topics.fetcher, args.messages, args.channels)
            print(f"produced {args.messages} messages in {produce_s:.2f} s", flush=True)

            ticks: list[float] = []
            total = 0
            while total < args.messages:
                began = time.perf_counter()
                result = harness.tick()
                ticks.append(time.perf_counter() - began)
                if result.skip_reason:
                    raise RuntimeError(f"drained early at {total}: {result.skip_reason}")
                total += requested(result)
                print(f"  tick {len(ticks)}: {requested(result)} runs in {ticks[-1]:.2f} s")
            drain_s = sum(ticks)
            rate = total / drain_s

            delays: list[float] = []
            for _ in range(args.delay_samples):
                t0 = time.perf_counter()
                harness.produce(message(ep, "bench-delay"), key="bench-delay")
                while not requested(harness.tick()):
                    pass
                delays.append(time.perf_counter() - t0)
        bus.close()
        db.close()

    tick_mean = statistics.mean(ticks)
    daemon_rate = args.per_tick / max(5.0, tick_mean)
    rows = [
        Row(
            f"sensor: {args.messages} messages, ticks back to back",
            rate,
            None,
            "msg/s",
            f">= {TARGET_MSG_S:.0f} msg/s",
            rate >= TARGET_MSG_S,
            {"ticks": len(ticks), "tick_mean_s": tick_mean, "drain_s": drain_s},
        ),
        Row(
            "sensor: daemon-paced (5 s interval, per-tick cap)",
            daemon_rate,
            None,
            "msg/s",
            f">= {TARGET_MSG_S:.0f} msg/s",
            daemon_rate >= TARGET_MSG_S,
            {"per_tick": args.per_tick, "minimum_interval_seconds": 5},
        ),
        Row(
            "sensor: produce -> run requested (median)",
            statistics.median(delays),
            None,
            "s",
            "-",
            None,
            {"samples": delays},
        ),
    ]
    print_table("Kafka sensor", rows)
    write_results("sensor", vars(args), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
