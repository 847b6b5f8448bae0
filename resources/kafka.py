"""Kafka as a resource: the broker address and the topic names of the contracts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    from amazoniax_dagster.clients.kafka import KafkaBus, Topics
    from amazoniax_dagster.jobs.intake import IntakeLimits


class KafkaResource(dg.ConfigurableResource):
    bootstrap_servers: str
    fetcher_topic: str = "amazoniax_fetcher"
    parsers_topic: str = "amazoniax_parsers"
    status_topic: str = "amazoniax_status"
    dead_letter_topic: str = "amazoniax_fetcher_dlq"
    client_id: str = "amazoniax"
    max_messages_per_tick: int = Field(default=5000, description="sensor work bound per tick")
    max_seconds_per_tick: float = Field(default=20.0, description="sensor time bound per tick")
    max_message_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="larger job messages are dead-lettered"
    )
    max_message_depth: int = Field(
        default=64, ge=4, description="job messages nesting deeper are dead-lettered"
    )
    failed_ticks_before_dead_letter: int = Field(
        default=3,
        ge=1,
        description="ticks the sensor may fail on one message (a bug of ours) before the "
        "message is dead-lettered so that the ones behind it go on",
    )

    _bus: KafkaBus | None = PrivateAttr(default=None)

    def get_bus(self) -> KafkaBus:
        if self._bus is None:
            from amazoniax_dagster.clients.kafka import KafkaBus

            self._bus = KafkaBus(self.bootstrap_servers, client_id=self.client_id)
        return self._bus

    def topics(self) -> Topics:
        from amazoniax_dagster.clients.kafka import Topics

        return Topics(
            fetcher=self.fetcher_topic,
            parsers=self.parsers_topic,
            status=self.status_topic,
            dead_letter=self.dead_letter_topic,
        )

    def intake_limits(self) -> IntakeLimits:
        from amazoniax_dagster.jobs.intake import IntakeLimits

        return IntakeLimits(max_bytes=self.max_message_bytes, max_depth=self.max_message_depth)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None
