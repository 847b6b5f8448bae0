"""The contract every fetcher kind meets: config in, files in one folder out, a report back.

A fetcher writes only below ``FetchContext.out_dir`` (paths checked with
``paths.safe_relative_path``) and raises only errors of the product's tree: TransientError
after its own retries, ConfigError (401/403, bad recipe values), SiteChangedError (a known
endpoint 404s, an expected field or selector is gone), FetcherCodeError (generated code broke).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from amazoniax_dagster.core.checkpoints import Checkpoint
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy


@dataclass(frozen=True)
class FetchLimits:
    """Guards that make every fetch terminate, whatever the site answers."""

    max_pages: int = 1000  # per paginated request
    max_requests: int = 10_000  # per fetch, all requests together
    timeout_seconds: float = 30.0  # per request (connect, read, write, pool)
    max_file_bytes: int = 2 * 1024**3  # one response or download


@dataclass(frozen=True)
class FetchContext:
    """What a fetcher may use. ``config`` holds the channel's secrets: never log it."""

    config: WebSourceConfig
    out_dir: Path
    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    run_date: date = field(default_factory=date.today)
    limits: FetchLimits = field(default_factory=FetchLimits)
    # The channel's simple retries, for fetchers that retry each request themselves.
    max_retries: int = 3
    retry_delay_seconds: float = 30.0
    # How Python fetchers are started (python_runtime.Launcher, e.g. Dagster Pipes in a run;
    # None = a plain sandboxed subprocess) and their limits (python_runtime.SandboxLimits).
    python_launcher: Any = None
    python_limits: Any = None
    # The channel's checkpoint from its last successful job (recipes with ``incremental``).
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True)
class FetchedFile:
    relative_path: str  # below out_dir, posix separators
    size: int
    source_url: str | None = None  # redacted


@dataclass
class FetchReport:
    """What a fetch produced; ``metadata`` is shown in the UI, so it holds no secrets."""

    files: list[FetchedFile] = field(default_factory=list)
    requests: int = 0
    pages: int = 0
    # Records seen in the data responses; None when the fetcher cannot tell (no records path).
    records: int | None = None
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    # The checkpoint to store when the job succeeds; None when the fetcher keeps none.
    checkpoint: Checkpoint | None = None
    # True when the fetch asked only for data after a checkpoint: a short fetch is expected.
    incremental: bool = False


class Fetcher(Protocol):
    """A loaded fetcher version, ready to run for one channel."""

    @property
    def kind(self) -> str:
        """``recipe``, ``browser`` or ``python``."""
        ...

    def fetch(self, ctx: FetchContext) -> FetchReport: ...


@dataclass(frozen=True)
class LoadedFetcher:
    """A fetcher ready to run, and where it came from (shown in metadata and status)."""

    name: str  # "<domain>_fetcher_vN", or "generic_api"
    fetcher: Fetcher
    version: int | None = None
    fetcher_id: int | None = None  # fetcher_details.id; None for the built-in generic one
    how: str = "mapped"  # mapped | site | generic | generated | healed
