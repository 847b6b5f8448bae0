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

from sqlalchemy import Connection, Row, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from amazoniax_dagster.db.models import channel_fetcher_details, fetcher_details
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
    transaction (``_transaction``, errors translated) and the cipher."""

    if TYPE_CHECKING:
        _cipher: SecretCipher

        def _transaction(self, what: str) -> AbstractContextManager[Connection]: ...

    # -- versions -------------------------------------------------------------------------------

    def allocate_fetcher_version(
        self, structure_id: str, kind: str, *, provenance: Mapping[str, Any] | None = None
    ) -> FetcherVersion:
        """Number the site's next version (status ``candidate``). Race-safe across processes."""
        # Only publishing names versions: the registry module stays out of job start-up.
        from amazoniax_dagster.fetchers.registry import KINDS, fetcher_name

        if kind not in KINDS:
            raise ValueError(f"unknown fetcher kind {kind!r}; known kinds: {', '.join(KINDS)}")
        fetcher_name(structure_id, 1)  # a site that cannot be named fails before any write
        with self._transaction("allocate a fetcher version") as s:
            _advisory_lock(s, SITE_LOCK, structure_id)
            latest = s.scalar(
                select(func.max(fetcher_details.c.version)).where(
                    fetcher_details.c.structure_id == structure_id
                )
            )
            version = (latest or 0) + 1
            name = fetcher_name(structure_id, version)
            stmt = (
                insert(fetcher_details)
                .values(
                    structure_id=structure_id,
                    fetcher_name=name,
                    version=version,
                    kind=kind,
                    status="candidate",
                    provenance_json=dict(provenance or {}),
                )
                .returning(*fetcher_details.c)
            )
            try:
                row = s.execute(stmt).one()
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
        with self._transaction("publish the fetcher version") as s:
            row = _locked_row(s, fetcher_id)
            if row.status == "rejected" or (
                row.status == "published" and row.git_commit != git_commit
            ):
                raise ValueError(
                    f"fetcher {row.fetcher_name} is {row.status} (commit {row.git_commit}); "
                    "allocate a new version instead"
                )
            if row.status == "candidate":
                values: dict[str, Any] = {
                    "status": "published",
                    "git_commit": git_commit,
                    "published_at": func.now(),  # the transaction's time: one clock for all
                }
                if provenance is not None:
                    values["provenance_json"] = dict(provenance)
                row = _update(s, fetcher_id, values)
            return _version(row)

    def mark_fetcher_rejected(
        self,
        fetcher_id: int,
        *,
        git_commit: str | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> FetcherVersion:
        """The version failed validation (its code, if any, is on a candidates/ branch)."""
        with self._transaction("reject the fetcher version") as s:
            row = _locked_row(s, fetcher_id)
            if row.status == "published":
                raise ValueError(
                    f"fetcher {row.fetcher_name} is already published; publish a new version"
                )
            values: dict[str, Any] = {"status": "rejected"}
            if git_commit is not None:
                values["git_commit"] = git_commit
            if provenance is not None:
                values["provenance_json"] = dict(provenance)
            return _version(_update(s, fetcher_id, values))

    def get_fetcher_version(self, fetcher_id: int) -> FetcherVersion | None:
        with self._transaction("read the fetcher version") as s:
            row = _row(s, fetcher_id)
            return _version(row) if row is not None else None

    def fetcher_versions(self, structure_id: str) -> list[FetcherVersion]:
        """Every version of the site, whatever its status, oldest first."""
        stmt = (
            select(fetcher_details)
            .where(fetcher_details.c.structure_id == structure_id)
            .order_by(fetcher_details.c.version)
        )
        with self._transaction("list the site's fetcher versions") as s:
            return [_version(row) for row in s.execute(stmt)]

    def latest_fetcher(self, structure_id: str) -> FetcherVersion | None:
        """The site's newest *published* version."""
        stmt = (
            select(fetcher_details)
            .where(
                fetcher_details.c.structure_id == structure_id,
                fetcher_details.c.status == "published",
            )
            .order_by(fetcher_details.c.version.desc())
            .limit(1)
        )
        with self._transaction("read the site's latest fetcher") as s:
            row = s.execute(stmt).first()
            return _version(row) if row is not None else None

    # -- channel mappings -----------------------------------------------------------------------

    def channel_mapping(self, channel_id: str) -> ChannelMapping | None:
        stmt = (
            select(
                channel_fetcher_details.c.config_json.label("mapping_config"),
                channel_fetcher_details.c.created_at.label("mapped_at"),
                *fetcher_details.c,
            )
            .join(fetcher_details, fetcher_details.c.id == channel_fetcher_details.c.fetcher_id)
            .where(
                channel_fetcher_details.c.channel_id == channel_id,
                channel_fetcher_details.c.replaced_at.is_(None),
            )
        )
        with self._transaction("read the channel's fetcher") as s:
            found = s.execute(stmt).one_or_none()
            if found is None:
                return None
            return ChannelMapping(
                channel_id,
                _version(found),
                self._cipher.unseal(found.mapping_config),
                found.mapped_at,
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
        with self._transaction("map the channel to a fetcher") as s:
            target = _row(s, fetcher_id)
            if target is None or target.status != "published":
                state = "does not exist" if target is None else f"is {target.status}"
                raise ValueError(
                    f"fetcher version {fetcher_id} {state}: only published versions are mapped"
                )
            _advisory_lock(s, SITE_LOCK, target.structure_id)
            _advisory_lock(s, CHANNEL_LOCK, channel_id)
            current = s.execute(
                select(channel_fetcher_details)
                .where(
                    channel_fetcher_details.c.channel_id == channel_id,
                    channel_fetcher_details.c.replaced_at.is_(None),
                )
                .with_for_update()
            ).first()
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
                insert(channel_fetcher_details).values(
                    channel_id=channel_id, fetcher_id=fetcher_id, config_json=sealed
                )
            )
            return True

    def remap_site(self, structure_id: str, fetcher_id: int) -> list[str]:
        """Move every channel now mapped to an *older* version of the site onto ``fetcher_id``,
        in one transaction, keeping each channel's config. Returns the moved channels.

        Never moves a channel backwards: when two publishers race, v2's remap may run after
        v3's, and the channels must stay on v3. A rollback maps channels one by one."""
        with self._transaction("remap the site's channels") as s:
            target = _row(s, fetcher_id)
            if target is None or target.status != "published":
                raise ValueError(f"fetcher version {fetcher_id} is not a published version")
            if target.structure_id != structure_id:
                raise ValueError(
                    f"fetcher {target.fetcher_name} belongs to {target.structure_id!r}, "
                    f"not {structure_id!r}"
                )
            _advisory_lock(s, SITE_LOCK, structure_id)
            moving = s.execute(
                select(channel_fetcher_details)
                .join(fetcher_details, fetcher_details.c.id == channel_fetcher_details.c.fetcher_id)
                .where(
                    fetcher_details.c.structure_id == structure_id,
                    channel_fetcher_details.c.replaced_at.is_(None),
                    fetcher_details.c.version < target.version,
                )
                .order_by(channel_fetcher_details.c.channel_id)
                .with_for_update(of=channel_fetcher_details)
            ).all()
            if not moving:
                return []
            _close(s, [row.id for row in moving])
            s.execute(
                insert(channel_fetcher_details),
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
            select(channel_fetcher_details.c.channel_id)
            .join(fetcher_details, fetcher_details.c.id == channel_fetcher_details.c.fetcher_id)
            .where(
                fetcher_details.c.structure_id == structure_id,
                channel_fetcher_details.c.replaced_at.is_(None),
            )
            .order_by(channel_fetcher_details.c.channel_id)
        )
        with self._transaction("list the site's channels") as s:
            return list(s.scalars(stmt))


def _advisory_lock(s: Connection, namespace: int, key: str) -> None:
    s.execute(_LOCK, {"namespace": namespace, "key": key})


def _row(s: Connection, fetcher_id: int, *, for_update: bool = False) -> Row[Any] | None:
    stmt = select(fetcher_details).where(fetcher_details.c.id == fetcher_id)
    return s.execute(stmt.with_for_update() if for_update else stmt).first()


def _locked_row(s: Connection, fetcher_id: int) -> Row[Any]:
    row = _row(s, fetcher_id, for_update=True)
    if row is None:
        raise ValueError(f"fetcher version {fetcher_id} does not exist")
    return row


def _update(s: Connection, fetcher_id: int, values: Mapping[str, Any]) -> Row[Any]:
    stmt = (
        update(fetcher_details)
        .where(fetcher_details.c.id == fetcher_id)
        .values(**values)
        .returning(*fetcher_details.c)
    )
    return s.execute(stmt).one()


def _close(s: Connection, mapping_ids: list[int]) -> None:
    s.execute(
        update(channel_fetcher_details)
        .where(channel_fetcher_details.c.id.in_(mapping_ids))
        .values(replaced_at=func.now())
    )


def _version(row: Row[Any]) -> FetcherVersion:
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
