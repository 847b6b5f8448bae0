"""Jobs: ``channel_files_job`` materializes one channel partition (one fetcher job)."""

from __future__ import annotations

import dagster as dg

channel_files_job = dg.define_asset_job(
    "channel_files_job",
    selection=dg.AssetSelection.assets("channel_files"),
    description="Fetch one channel: one run per Kafka job message or per UI launch.",
)
