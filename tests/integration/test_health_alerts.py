"""The health-alert sensor on the real stack: one alert per incident on amazoniax_status."""

from __future__ import annotations

import dagster as dg
import pytest

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.devstack.ports import free_port
from resources import FetcherDBResource
from sensors import component_alert_job, health_alert_sensor
from sensors.health_alerts import COMPONENT_TAG
from tests.integration.harness import Harness, end_offsets, read_json

pytestmark = pytest.mark.integration


def tick(
    harness: Harness, cursor: str | None, runs: list[dg.RunRequest], **overrides: object
) -> tuple[str, str | None]:
    """One evaluation: its skip message ("" when it requested runs, which join ``runs``)."""
    with dg.build_sensor_context(
        instance=harness.instance, cursor=cursor, resources=harness.resources() | overrides
    ) as context:
        result = health_alert_sensor(context)
        if isinstance(result, dg.SensorResult):
            runs.extend(result.run_requests or [])
            return "", result.cursor
        assert isinstance(result, dg.SkipReason)
        return str(result.skip_message), context.cursor


def test_an_unreachable_database_is_alerted_once_then_recovery(
    harness: Harness, stack: StackEndpoints, bus: KafkaBus
) -> None:
    since = end_offsets(bus, Topics().status)
    runs: list[dg.RunRequest] = []
    message, cursor = tick(harness, None, runs)
    assert message == "all components healthy"
    dead = FetcherDBResource(
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x?connect_timeout=2",
        secret_key=stack.secret_key,
    )
    messages = []
    for _ in range(4):
        message, cursor = tick(harness, cursor, runs, fetcher_db=dead)
        messages.append(message)
    # the third failed check opens the incident: one alert run, then only the skip reason
    assert messages == [
        "failing: database (1 of 3 checks)",
        "failing: database (2 of 3 checks)",
        "",
        "open incidents: database",
    ]
    message, cursor = tick(harness, cursor, runs)
    assert message == "all components healthy"
    assert len(runs) == 1 and runs[0].tags == {COMPONENT_TAG: "database"}
    # the alert run fails with the incident as its message (no stack trace of ours to read)
    outcome = component_alert_job.execute_in_process(
        run_config=runs[0].run_config, instance=harness.instance, raise_on_error=False
    )
    assert not outcome.success
    failure = next(e for e in outcome.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    assert error is not None
    assert error.message.startswith("dagster._core.definitions.events.Failure: database unhealthy")
    assert "for 3 checks in a row: OperationalError" in error.message
    alerts = [
        m for m in read_json(bus, Topics().status, since) if m.get("type") == "component_alert"
    ]
    assert [(a["component"], a["state"]) for a in alerts] == [
        ("database", "unhealthy"),
        ("database", "recovered"),
    ]
