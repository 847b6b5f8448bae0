"""Health alerts: probe the database, Kafka and S3 on an interval; a component unhealthy for
three checks in a row gets one alert on ``amazoniax_status`` per incident (and one when it
recovers) and one failed ``component_alert_job`` run, so that the UI's failed runs and any
run-failure alerting show it; the tick's skip reason names the open incidents."""

import json
from typing import TYPE_CHECKING

import dagster as dg

from resources import FetcherDBResource, KafkaResource, OutputBucketResource

if TYPE_CHECKING:
    from amazoniax_dagster.records.api import health

AFTER_CHECKS = 3
COMPONENT_TAG = "amazoniax/component"


class ComponentAlertConfig(dg.Config):
    component: str
    failed_checks: int
    error: str = ""


@dg.op
def component_alert(config: ComponentAlertConfig) -> None:
    """Fails with the incident as its description: the run is the alert."""
    raise dg.Failure(
        description=(
            f"{config.component} unhealthy for {config.failed_checks} checks in a row"
            + (f": {config.error}" if config.error else "")
        ),
        metadata={"component": config.component, "error": config.error},
        allow_retries=False,
    )


@dg.job(
    description="One failed run per component incident (opened by health_alert_sensor).",
    executor_def=dg.in_process_executor,
    tags={"amazoniax/kind": "component_alert"},
)
def component_alert_job() -> None:
    component_alert()


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    job=component_alert_job,
)
def health_alert_sensor(
    context: dg.SensorEvaluationContext,
    fetcher_db: FetcherDBResource,
    kafka: KafkaResource,
    output_bucket: OutputBucketResource,
) -> dg.SkipReason | dg.SensorResult:
    from amazoniax_dagster.clients.kafka import Topics
    from amazoniax_dagster.records.api import health
    from amazoniax_dagster.records.api.alerts import Incidents, alert_message

    bucket = output_bucket.get_bucket(max_connections=1)
    try:
        found = [
            health.probe("database", health.database_check(fetcher_db.get_db().database)),
            health.probe("kafka", health.kafka_check(kafka.bootstrap_servers)),
            health.probe("s3", health.s3_check(bucket)),
        ]
    finally:
        bucket.close()
    incidents = Incidents.from_cursor(context.cursor, after=AFTER_CHECKS)
    alert, recovered = incidents.observe({c.name: c.healthy for c in found})
    by_name = {c.name: c for c in found}
    for name, state in [(n, "unhealthy") for n in alert] + [(n, "recovered") for n in recovered]:
        message = alert_message(name, state, by_name[name].as_dict())
        try:
            kafka.get_bus().publish(
                Topics().status, json.dumps(message).encode(), key=name.encode()
            )
        except Exception as exc:  # Kafka itself may be the component that is down
            context.log.warning(f"alert for {name} not published: {type(exc).__name__}")
    if incidents.alerted:
        context.log.error(f"unhealthy: {', '.join(sorted(incidents.alerted))}")
    if alert:
        return dg.SensorResult(
            run_requests=[_alert_run(by_name[name], incidents.failures[name]) for name in alert],
            cursor=incidents.to_cursor(),
        )
    context.update_cursor(incidents.to_cursor())
    if incidents.alerted:
        return dg.SkipReason(f"open incidents: {', '.join(sorted(incidents.alerted))}")
    if incidents.failures:
        failing = ", ".join(
            f"{name} ({count} of {AFTER_CHECKS} checks)"
            for name, count in sorted(incidents.failures.items())
        )
        return dg.SkipReason(f"failing: {failing}")
    return dg.SkipReason("all components healthy")


def _alert_run(component: "health.Component", failed_checks: int) -> dg.RunRequest:
    config = ComponentAlertConfig(
        component=component.name, failed_checks=failed_checks, error=component.error or ""
    )
    return dg.RunRequest(
        run_config=dg.RunConfig(ops={"component_alert": config}),
        tags={COMPONENT_TAG: component.name},
    )
