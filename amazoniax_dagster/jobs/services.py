"""What every job is given: the request (which job, which channel) and the services it uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.clients.output_bucket import OutputBucket
from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.messages import (
    Flow,
)
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.fetchers.base import FetchLimits
from amazoniax_dagster.fetchers.routing import FetcherCatalog, FetcherGenerator


@dataclass(frozen=True)
class JobRequest:
    job_id: str
    channel_id: str
    flow: Flow = Flow.EXISTING
    run_id: str | None = None


@dataclass
class JobServices:
    """What a job needs from the outside world; Dagster resources build this in a run."""

    db: FetcherDB
    output: OutputBucket
    bus: KafkaBus
    topics: Topics = field(default_factory=Topics)
    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    max_workers: int = 16
    spool_dir: Path | None = None
    # html/api channels: published fetchers (DB + Git), built on first use; and the
    # generator of new versions (None where generation is not available).
    fetcher_catalog: Callable[[], FetcherCatalog] | None = None
    generator: FetcherGenerator | None = None
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    # Python fetchers: how they start (Dagster Pipes in a run) and their sandbox limits.
    python_launcher: Any = None
    python_limits: Any = None

    def catalog(self) -> FetcherCatalog:
        if self.fetcher_catalog is None:
            raise ConfigError("web/API channels need a fetcher repository, and none is set up")
        return self.fetcher_catalog()
