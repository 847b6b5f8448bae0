"""The health-alert sensor on the real stack: one alert per incident on amazoniax_status."""

from __future__ import annotations

import dagster as dg
import pytest

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.devstack.ports import free_port
from resources import FetcherDBResource
from sensors import health_alert_sensor
from tests.integration.harness import Harness, end_offsets, read_json

pytestmark = pytest.mark.integration


def tick(harness: Harness, cursor: str | None, **overrides: object) -> tuple[str, str | None]:
    with dg.build_sensor_context(
        instance=harness.instance, cursor=cursor, resources=harness.resources() | overrides
    ) as context:
        result = health_alert_sensor(context)
        assert isinstance(result, dg.SkipReason)
        return str(result.skip_message), context.cursor


def test_an_unreachable_database_is_alerted_once_then_recovery(
    harness: Harness, stack: StackEndpoints, bus: KafkaBus
) -> None:
    since = end_offsets(bus, Topics().status)
    message, cursor = tick(harness, None)
    assert message == "all components healthy"
    dead = FetcherDBResource(
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x?connect_timeout=2",
        secret_key=stack.secret_key,
    )
    for _ in range(4):
        message, cursor = tick(harness, cursor, fetcher_db=dead)
    assert message == "open incidents: database"
    message, cursor = tick(harness, cursor)
    assert message == "all components healthy"
    alerts = [
        m for m in read_json(bus, Topics().status, since) if m.get("type") == "component_alert"
    ]
    assert [(a["component"], a["state"]) for a in alerts] == [
        ("database", "unhealthy"),
        ("database", "recovered"),
    ]
