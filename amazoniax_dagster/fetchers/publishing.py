"""Publishing a fetcher version: the DB row and the Git folder together, or a rejected candidate
kept on its branch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.fetcher_names import (
    entry_kind,
)

if TYPE_CHECKING:
    from amazoniax_dagster.db.fetcher_versions import FetcherVersion
from amazoniax_dagster.fetchers.registry import FetcherRepo


class FetcherLedger(Protocol):
    """The DB side of publishing (``FetcherDB`` implements it)."""

    def allocate_fetcher_version(
        self, structure_id: str, kind: str, *, provenance: Mapping[str, Any] | None = None
    ) -> FetcherVersion: ...

    def mark_fetcher_published(
        self, fetcher_id: int, git_commit: str, provenance: Mapping[str, Any] | None = None
    ) -> FetcherVersion: ...

    def mark_fetcher_rejected(
        self,
        fetcher_id: int,
        *,
        git_commit: str | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> FetcherVersion: ...

    def remap_site(self, structure_id: str, fetcher_id: int) -> list[str]: ...


def publish_version(
    ledger: FetcherLedger,
    repo: FetcherRepo,
    *,
    structure_id: str,
    files: Mapping[str, bytes],
    provenance: Mapping[str, Any],
    message: str | None = None,
    remap: bool = True,
) -> FetcherVersion:
    """Allocate -> write, commit, push -> mark published -> remap the site's channels (in this
    order; see the module docstring). Returns the published version."""
    kind = entry_kind(files)
    if not repo.auto_commit:
        raise ConfigError("the fetcher repository has auto_commit off: nothing can be published")
    allocated = ledger.allocate_fetcher_version(structure_id, kind, provenance=provenance)
    name = allocated.fetcher_name
    commit = repo.write_version(name, files, provenance, message or f"Publish {name}")
    if commit is None:  # pragma: no cover - auto_commit was checked above
        raise ConfigError(f"{name} was written but not committed")
    published = ledger.mark_fetcher_published(allocated.id, commit, provenance)
    if remap:
        ledger.remap_site(structure_id, published.id)
    return published


def keep_candidate(
    ledger: FetcherLedger,
    repo: FetcherRepo,
    *,
    structure_id: str,
    files: Mapping[str, bytes],
    provenance: Mapping[str, Any],
    message: str | None = None,
) -> FetcherVersion:
    """A version that failed validation: allocated, committed on ``candidates/<name>`` for a
    person to review, and marked ``rejected`` (no channel is ever mapped to it)."""
    kind = entry_kind(files)
    allocated = ledger.allocate_fetcher_version(structure_id, kind, provenance=provenance)
    name = allocated.fetcher_name
    commit = repo.write_candidate(name, files, provenance, message or f"Candidate {name}")
    return ledger.mark_fetcher_rejected(allocated.id, git_commit=commit, provenance=provenance)
