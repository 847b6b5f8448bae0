"""Health alerts: probe the database, Kafka and S3 on an interval; a component unhealthy for
three checks in a row gets one alert on ``amazoniax_status`` per incident (and one when it
recovers); the tick's skip reason names the open incidents."""

import json

import dagster as dg

from resources import FetcherDBResource, KafkaResource, OutputBucketResource

AFTER_CHECKS = 3


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def health_alert_sensor(
    context: dg.SensorEvaluationContext,
    fetcher_db: FetcherDBResource,
    kafka: KafkaResource,
    output_bucket: OutputBucketResource,
) -> dg.SkipReason:
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
    context.update_cursor(incidents.to_cursor())
    if incidents.alerted:
        context.log.error(f"unhealthy: {', '.join(sorted(incidents.alerted))}")
        return dg.SkipReason(f"open incidents: {', '.join(sorted(incidents.alerted))}")
    return dg.SkipReason("all components healthy")
