"""Dynamic partitions, defined once: one per channel, one per site (structure_id)."""

from __future__ import annotations

import dagster as dg

CHANNELS = "channels"
SITES = "sites"

channels_partitions = dg.DynamicPartitionsDefinition(name=CHANNELS)
sites_partitions = dg.DynamicPartitionsDefinition(name=SITES)
