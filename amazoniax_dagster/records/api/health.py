"""Each component's health, with how long asking it took."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amazoniax_dagster.clients.output_bucket import OutputBucket
from amazoniax_dagster.db.pg import Database

TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Component:
    name: str
    healthy: bool
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "latency_ms": round(self.latency_ms, 1),
            "error": self.error,
        }


def probe(name: str, check: Callable[[], None]) -> Component:
    began = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure is the component's ill health, reported by class
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        return Component(name, False, (time.perf_counter() - began) * 1000, error)
    return Component(name, True, (time.perf_counter() - began) * 1000)


def database_check(db: Database) -> Callable[[], None]:
    def check() -> None:
        with db.transaction() as sql:
            sql.execute("SET LOCAL statement_timeout = %s", (int(TIMEOUT_S * 1000),))
            sql.scalar("SELECT 1")

    return check


def kafka_check(bootstrap: str) -> Callable[[], None]:
    def check() -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 3000}
        )
        admin.list_topics(timeout=TIMEOUT_S)

    return check


def s3_check(bucket: OutputBucket) -> Callable[[], None]:
    return lambda: bucket.ping(timeout=TIMEOUT_S)
