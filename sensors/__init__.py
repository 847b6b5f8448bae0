"""Sensors: Kafka intake, status publication when channel runs end, stored channels on a
schedule, records automation and component health alerts."""

from sensors.dead_letters import dead_letters_asset
from sensors.health_alerts import component_alert_job, health_alert_sensor
from sensors.kafka import kafka_fetcher_sensor
from sensors.records import records_automation
from sensors.run_status import status_on_cancel, status_on_failure, status_on_success
from sensors.schedules import stored_channels_sensor

__all__ = [
    "component_alert_job",
    "dead_letters_asset",
    "health_alert_sensor",
    "kafka_fetcher_sensor",
    "records_automation",
    "status_on_cancel",
    "status_on_failure",
    "status_on_success",
    "stored_channels_sensor",
]
