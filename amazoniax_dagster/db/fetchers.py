"""The fetcher registry's DB side: fetcher versions and which version each channel runs.

``fetcher_details`` rows go ``candidate`` (number allocated) -> ``published`` (committed to the
fetchers repository, may be mapped) or -> ``rejected`` (failed validation, kept on a candidates/
branch). Only published versions are ever mapped to channels.

``channel_fetcher_details`` is the mapping *and* its history: at most one row per channel is
current (``replaced_at IS NULL``, a partial unique index), and a remap closes that row and opens
a new one, so "which version ran this channel last Tuesday" stays answerable. A mapping's
``config_json`` is sealed like the channel store.

Concurrency, with transaction-scoped advisory locks (two-key form, one namespace per kind):
allocation takes the site's lock and numbers ``max(version) + 1``, so two publishers of one site
get v2 and v3, never two v2; ``map_channel`` takes the target site's lock and the channel's;
``remap_site`` takes the site's lock and row locks on the current mappings it moves, and only
ever moves channels forward (to a higher version).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from amazoniax_dagster.db.models import ChannelFetcherDetails, FetcherDetails
from amazoniax_dagster.errors import ConfigError

if TYPE_CHECKING:
    from amazoniax_dagster.sealing import SecretCipher

# Advisory lock namespaces (first key of pg_advisory_xact_lock(int, int)); migrations use the
# one-key form, whose key space does not overlap with these.
SITE_LOCK = 727274003
CHANNEL_LOCK = 727274004

_LOCK = text("SELECT pg_advisory_xact_lock(CAST(:namespace AS integer), hashtext(:key))")


@dataclass(frozen=True)
class FetcherVersion:
    id: int
    structure_id: str
    fetcher_name: str
    version: int
    kind: str  # recipe | browser | python
    status: str  # candidate | published | rejected
    git_commit: str | None
    created_at: datetime
    published_at: datetime | None


@dataclass(frozen=True)
class ChannelMapping:
    """A channel's current fetcher version. ``config`` is unsealed: never log it."""

    channel_id: str
    fetcher: FetcherVersion
    config: dict[str, Any]
    mapped_at: datetime


class FetcherRegistryMixin:
    """Fetcher versions and channel mappings; mixed into ``FetcherDB``, which provides the
    session (``_session``, errors translated) and the cipher."""

    if TYPE_CHECKING:
        _cipher: SecretCipher

        def _session(self, what: str) -> AbstractContextManager[Session]: ...

    # -- versions -------------------------------------------------------------------------------

    def allocate_fetcher_version(
        self, structure_id: str, kind: str, *, provenance: Mapping[str, Any] | None = None
    ) -> FetcherVersion:
        """Number the site's next version (status ``candidate``). Race-safe across processes."""
        # Only publishing names versions: the registry (wcmatch, paths) stays out of job start-up.
        from amazoniax_dagster.fetchers.registry import KINDS, fetcher_name

        if kind not in KINDS:
            raise ValueError(f"unknown fetcher kind {kind!r}; known kinds: {', '.join(KINDS)}")
        fetcher_name(structure_id, 1)  # a site that cannot be named fails before any write
        with self._session("allocate a fetcher version") as s:
            _advisory_lock(s, SITE_LOCK, structure_id)
            latest = s.scalar(
                select(func.max(FetcherDetails.version)).where(
                    FetcherDetails.structure_id == structure_id
                )
            )
            version = (latest or 0) + 1
            name = fetcher_name(structure_id, version)
            stmt = (
                insert(FetcherDetails)
                .values(
                    structure_id=structure_id,
                    fetcher_name=name,
                    version=version,
                    kind=kind,
                    status="candidate",
                    provenance_json=dict(provenance or {}),
                )
                .returning(FetcherDetails)
            )
            try:
                row = s.scalars(stmt).one()
            except IntegrityError as exc:
                raise ConfigError(
                    f"fetcher name {name} of site {structure_id!r} is taken by another site "
                    "whose name reads the same once made file-system safe"
                ) from exc
            return _version(row)

    def mark_fetcher_published(
        self, fetcher_id: int, git_commit: str, provenance: Mapping[str, Any] | None = None
    ) -> FetcherVersion:
        """The version is on the main branch at ``git_commit``; channels may now use it.
        Publishing again with the same commit changes nothing."""
        if not git_commit:
            raise ValueError("a published fetcher version needs its git commit")
        with self._session("publish the fetcher version") as s:
            row = _locked_row(s, fetcher_id)
            if row.status == "rejected" or (
                row.status == "published" and row.git_commit != git_commit
            ):
                raise ValueError(
                    f"fetcher {row.fetcher_name} is {row.status} (commit {row.git_commit}); "
                    "allocate a new version instead"
                )
            if row.status == "candidate":
                row.status, row.git_commit, row.published_at = "published", git_commit, _now(s)
                if provenance is not None:
                    row.provenance_json = dict(provenance)
            return _version(row)

    def mark_fetcher_rejected(
        self,
        fetcher_id: int,
        *,
        git_commit: str | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> FetcherVersion:
        """The version failed validation (its code, if any, is on a candidates/ branch)."""
        with self._session("reject the fetcher version") as s:
            row = _locked_row(s, fetcher_id)
            if row.status == "published":
                raise ValueError(
                    f"fetcher {row.fetcher_name} is already published; publish a new version"
                )
            row.status = "rejected"
            if git_commit is not None:
                row.git_commit = git_commit
            if provenance is not None:
                row.provenance_json = dict(provenance)
            return _version(row)

    def get_fetcher_version(self, fetcher_id: int) -> FetcherVersion | None:
        with self._session("read the fetcher version") as s:
            row = s.get(FetcherDetails, fetcher_id)
            return _version(row) if row is not None else None

    def fetcher_versions(self, structure_id: str) -> list[FetcherVersion]:
        """Every version of the site, whatever its status, oldest first."""
        stmt = (
            select(FetcherDetails)
            .where(FetcherDetails.structure_id == structure_id)
            .order_by(FetcherDetails.version)
        )
        with self._session("list the site's fetcher versions") as s:
            return [_version(row) for row in s.scalars(stmt)]

    def latest_fetcher(self, structure_id: str) -> FetcherVersion | None:
        """The site's newest *published* version."""
        stmt = (
            select(FetcherDetails)
            .where(
                FetcherDetails.structure_id == structure_id,
                FetcherDetails.status == "published",
            )
            .order_by(FetcherDetails.version.desc())
            .limit(1)
        )
        with self._session("read the site's latest fetcher") as s:
            row = s.scalar(stmt)
            return _version(row) if row is not None else None

    # -- channel mappings -----------------------------------------------------------------------

    def channel_mapping(self, channel_id: str) -> ChannelMapping | None:
        stmt = (
            select(ChannelFetcherDetails, FetcherDetails)
            .join(FetcherDetails, FetcherDetails.id == ChannelFetcherDetails.fetcher_id)
            .where(
                ChannelFetcherDetails.channel_id == channel_id,
                ChannelFetcherDetails.replaced_at.is_(None),
            )
        )
        with self._session("read the channel's fetcher") as s:
            found = s.execute(stmt).one_or_none()
            if found is None:
                return None
            mapping, fetcher = found
            return ChannelMapping(
                channel_id,
                _version(fetcher),
                self._cipher.unseal(mapping.config_json),
                mapping.created_at,
            )

    def channel_fetcher(self, channel_id: str) -> FetcherVersion | None:
        """The version the channel is mapped to, if any."""
        mapping = self.channel_mapping(channel_id)
        return mapping.fetcher if mapping is not None else None

    def map_channel(
        self, channel_id: str, fetcher_id: int, config: Mapping[str, Any] | None = None
    ) -> bool:
        """Point the channel at a published version; ``config=None`` keeps the current mapping's
        config. False when the channel already had exactly this mapping."""
        with self._session("map the channel to a fetcher") as s:
            target = s.get(FetcherDetails, fetcher_id)
            if target is None or target.status != "published":
                state = "does not exist" if target is None else f"is {target.status}"
                raise ValueError(
                    f"fetcher version {fetcher_id} {state}: only published versions are mapped"
                )
            _advisory_lock(s, SITE_LOCK, target.structure_id)
            _advisory_lock(s, CHANNEL_LOCK, channel_id)
            current = s.scalar(
                select(ChannelFetcherDetails)
                .where(
                    ChannelFetcherDetails.channel_id == channel_id,
                    ChannelFetcherDetails.replaced_at.is_(None),
                )
                .with_for_update()
            )
            if current is not None and current.fetcher_id == fetcher_id:
                if config is None or self._cipher.unseal(current.config_json) == dict(config):
                    return False
            if config is not None:
                sealed = self._cipher.seal(config)
            else:
                sealed = current.config_json if current is not None else {}
            if current is not None:
                _close(s, [current.id])
            s.execute(
                insert(ChannelFetcherDetails).values(
                    channel_id=channel_id, fetcher_id=fetcher_id, config_json=sealed
                )
            )
            return True

    def remap_site(self, structure_id: str, fetcher_id: int) -> list[str]:
        """Move every channel now mapped to an *older* version of the site onto ``fetcher_id``,
        in one transaction, keeping each channel's config. Returns the moved channels.

        Never moves a channel backwards: when two publishers race, v2's remap may run after
        v3's, and the channels must stay on v3. A rollback maps channels one by one."""
        with self._session("remap the site's channels") as s:
            target = s.get(FetcherDetails, fetcher_id)
            if target is None or target.status != "published":
                raise ValueError(f"fetcher version {fetcher_id} is not a published version")
            if target.structure_id != structure_id:
                raise ValueError(
                    f"fetcher {target.fetcher_name} belongs to {target.structure_id!r}, "
                    f"not {structure_id!r}"
                )
            _advisory_lock(s, SITE_LOCK, structure_id)
            moving = s.scalars(
                select(ChannelFetcherDetails)
                .join(FetcherDetails, FetcherDetails.id == ChannelFetcherDetails.fetcher_id)
                .where(
                    FetcherDetails.structure_id == structure_id,
                    ChannelFetcherDetails.replaced_at.is_(None),
                    FetcherDetails.version < target.version,
                )
                .order_by(ChannelFetcherDetails.channel_id)
                .with_for_update(of=ChannelFetcherDetails)
            ).all()
            if not moving:
                return []
            _close(s, [row.id for row in moving])
            s.execute(
                insert(ChannelFetcherDetails),
                [
                    {
                        "channel_id": r.channel_id,
                        "fetcher_id": fetcher_id,
                        "config_json": r.config_json,
                    }
                    for r in moving
                ],
            )
            return [row.channel_id for row in moving]

    def channels_for_site(self, structure_id: str) -> list[str]:
        """The channels currently mapped to any version of the site."""
        stmt = (
            select(ChannelFetcherDetails.channel_id)
            .join(FetcherDetails, FetcherDetails.id == ChannelFetcherDetails.fetcher_id)
            .where(
                FetcherDetails.structure_id == structure_id,
                ChannelFetcherDetails.replaced_at.is_(None),
            )
            .order_by(ChannelFetcherDetails.channel_id)
        )
        with self._session("list the site's channels") as s:
            return list(s.scalars(stmt))


def _advisory_lock(s: Session, namespace: int, key: str) -> None:
    s.execute(_LOCK, {"namespace": namespace, "key": key})


def _locked_row(s: Session, fetcher_id: int) -> FetcherDetails:
    row = s.get(FetcherDetails, fetcher_id, with_for_update=True)
    if row is None:
        raise ValueError(f"fetcher version {fetcher_id} does not exist")
    return row


def _close(s: Session, mapping_ids: list[int]) -> None:
    s.execute(
        update(ChannelFetcherDetails)
        .where(ChannelFetcherDetails.id.in_(mapping_ids))
        .values(replaced_at=func.now())
    )


def _now(s: Session) -> datetime:
    """The transaction's time on the DB server (one clock for every timestamp)."""
    return s.execute(select(func.now())).scalar_one()


def _version(row: FetcherDetails) -> FetcherVersion:
    return FetcherVersion(
        id=row.id,
        structure_id=row.structure_id,
        fetcher_name=row.fetcher_name,
        version=row.version,
        kind=row.kind,
        status=row.status,
        git_commit=row.git_commit,
        created_at=row.created_at,
        published_at=row.published_at,
    )


__all__ = ["CHANNEL_LOCK", "SITE_LOCK", "ChannelMapping", "FetcherRegistryMixin", "FetcherVersion"]
