"""Automation of ``channel_records``: materialised after each ``channel_files`` partition run."""

import dagster as dg

# Runs by default (no one has to switch it on in the UI): the records follow every fetch.
records_automation = dg.AutomationConditionSensorDefinition(
    "records_automation",
    target=dg.AssetSelection.assets("channel_records"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Materialises channel_records for a channel after its channel_files run.",
)
