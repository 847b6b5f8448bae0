"""Asset jobs: ``channel_files_job`` materializes one channel partition (one fetcher job);
``fetcher_code_job`` generates (or heals) one site's fetcher, then runs the job that asked."""

from __future__ import annotations

import dagster as dg

channel_files_job = dg.define_asset_job(
    "channel_files_job",
    selection=dg.AssetSelection.assets("channel_files"),
    description="Fetch one channel: one run per Kafka job message or per UI launch.",
    # One step, in the run's own process: a step subprocess only adds a process start.
    executor_def=dg.in_process_executor,
)

fetcher_code_job = dg.define_asset_job(
    "fetcher_code_job",
    selection=dg.AssetSelection.assets("fetcher_code"),
    description=(
        "Generate or heal one site's fetcher, validate it on the site's channels, publish "
        "it, then run the job that asked for it."
    ),
    # Its ops form one chain: step subprocesses would run them no sooner, only start slower.
    executor_def=dg.in_process_executor,
)
