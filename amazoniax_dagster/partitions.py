"""Dynamic partitions, defined once: one per channel, one per site (structure_id)."""

from __future__ import annotations

import dagster as dg

channels_partitions = dg.DynamicPartitionsDefinition(name="channels")
sites_partitions = dg.DynamicPartitionsDefinition(name="sites")
