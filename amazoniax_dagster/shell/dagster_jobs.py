"""Jobs: ``channel_files_job`` materializes one channel partition (one fetcher job);
``fetcher_code_job`` generates (or heals) one site's fetcher, then runs the job that asked."""

from __future__ import annotations

import dagster as dg

channel_files_job = dg.define_asset_job(
    "channel_files_job",
    selection=dg.AssetSelection.assets("channel_files"),
    description="Fetch one channel: one run per Kafka job message or per UI launch.",
    # One step: a step subprocess would only add a second process start and exit (1.3-1.5 s
    # of every run, bench/README.md). Each run still has its own process (a pod in k8s).
    config={"execution": {"config": {"in_process": {}}}},
)

fetcher_code_job = dg.define_asset_job(
    "fetcher_code_job",
    selection=dg.AssetSelection.assets("fetcher_code"),
    description=(
        "Generate or heal one site's fetcher, validate it on the site's channels, publish "
        "it, then run the job that asked for it."
    ),
    # Its five ops form one chain, so step subprocesses would run them no sooner, and each
    # would cost a process start and the code location's import (4-6 s apiece on 2 cores).
    # Chromium and sandboxed Python fetchers have processes of their own either way.
    config={"execution": {"config": {"in_process": {}}}},
)
