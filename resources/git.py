"""The fetchers Git repository as a resource: a thin wrapper that builds a ``FetcherRepo``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    from amazoniax_dagster.fetchers.registry import FetcherRepo


class FetcherRepoResource(dg.ConfigurableResource):
    """Where fetcher versions live. ``remote_url`` may hold credentials: pass it as an
    ``EnvVar``; it is only ever shown redacted."""

    repo_path: str = Field(description="local cache (a clone of remote_url, when given)")
    remote_url: str | None = Field(
        default=None, description="the shared repository; None keeps a local-only repository"
    )
    branch: str = "main"
    sync_on_startup: bool = Field(
        default=True, description="sync the cache the first time a run uses the repository"
    )
    auto_commit: bool = True
    push: bool = True

    _repo: FetcherRepo | None = PrivateAttr(default=None)

    def get_repo(self) -> FetcherRepo:
        """The repository, synced once on first use when ``sync_on_startup`` (runs that never
        touch a fetcher never pay for a fetch)."""
        if self._repo is None:
            from amazoniax_dagster.fetchers.registry import FetcherRepo

            repo = FetcherRepo(
                self.repo_path,
                remote_url=self.remote_url or None,
                branch=self.branch,
                auto_commit=self.auto_commit,
                push=self.push,
            )
            if self.sync_on_startup:
                repo.sync()
            self._repo = repo
        return self._repo
