"""Sensors: Kafka intake, and status publication when channel runs end."""

from sensors.kafka import kafka_fetcher_sensor
from sensors.run_status import status_on_cancel, status_on_failure, status_on_success

__all__ = ["kafka_fetcher_sensor", "status_on_cancel", "status_on_failure", "status_on_success"]
