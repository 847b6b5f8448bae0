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

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.db.pg import Sql, json_param

if TYPE_CHECKING:
    from amazoniax_dagster.core.sealing import SecretCipher

# Advisory lock namespaces (first key of pg_advisory_xact_lock(int, int)); migrations use the
# one-key form, whose key space does not overlap with these.
SITE_LOCK = 727274003
CHANNEL_LOCK = 727274004


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


# fetcher_details columns in FetcherVersion's order
_VERSION = (
    "id, structure_id, fetcher_name, version, kind, status, git_commit, created_at, published_at"
)
_VERSION_OF_F = ", ".join(f"f.{column.strip()}" for column in _VERSION.split(","))


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

        def _transaction(self, what: str) -> AbstractContextManager[Sql]: ...

    # -- versions -------------------------------------------------------------------------------

    def allocate_fetcher_version(
        self, structure_id: str, kind: str, *, provenance: Mapping[str, Any] | None = None
    ) -> FetcherVersion:
        """Number the site's next version (status ``candidate``). Race-safe across processes."""
        # Only publishing names versions: the registry module stays out of job start-up.
        from psycopg2 import IntegrityError

        from amazoniax_dagster.core.fetcher_names import KINDS, fetcher_name

        if kind not in KINDS:
            raise ValueError(f"unknown fetcher kind {kind!r}; known kinds: {', '.join(KINDS)}")
        fetcher_name(structure_id, 1)  # a site that cannot be named fails before any write
        with self._transaction("allocate a fetcher version") as s:
            _advisory_lock(s, SITE_LOCK, structure_id)
            latest = s.scalar(
                "SELECT max(version) FROM fetcher_details WHERE structure_id = %s", (structure_id,)
            )
            version = (latest or 0) + 1
            name = fetcher_name(structure_id, version)
            try:
                row = s.first(
                    "INSERT INTO fetcher_details (structure_id, fetcher_name, version, kind,"
                    " status, provenance_json) VALUES (%s, %s, %s, %s, 'candidate', %s)"
                    f" RETURNING {_VERSION}",
                    (structure_id, name, version, kind, json_param(dict(provenance or {}))),
                )
            except IntegrityError as exc:
                raise ConfigError(
                    f"fetcher name {name} of site {structure_id!r} is taken by another site "
                    "whose name reads the same once made file-system safe"
                ) from exc
            assert row is not None  # INSERT ... RETURNING gives the row it inserted
            return FetcherVersion(*row)

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
                # now(): the transaction's time, one clock for every row it writes
                values: dict[str, Any] = {"status": "published", "git_commit": git_commit}
                if provenance is not None:
                    values["provenance_json"] = json_param(dict(provenance))
                row = _update(s, fetcher_id, values, published_now=True)
            return row

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
                values["provenance_json"] = json_param(dict(provenance))
            return _update(s, fetcher_id, values)

    def get_fetcher_version(self, fetcher_id: int) -> FetcherVersion | None:
        with self._transaction("read the fetcher version") as s:
            return _row(s, fetcher_id)

    def fetcher_versions(self, structure_id: str) -> list[FetcherVersion]:
        """Every version of the site, whatever its status, oldest first."""
        with self._transaction("list the site's fetcher versions") as s:
            rows = s.all(
                f"SELECT {_VERSION} FROM fetcher_details WHERE structure_id = %s ORDER BY version",
                (structure_id,),
            )
        return [FetcherVersion(*row) for row in rows]

    def latest_fetcher(self, structure_id: str) -> FetcherVersion | None:
        """The site's newest *published* version."""
        with self._transaction("read the site's latest fetcher") as s:
            row = s.first(
                f"SELECT {_VERSION} FROM fetcher_details"
                " WHERE structure_id = %s AND status = 'published' ORDER BY version DESC LIMIT 1",
                (structure_id,),
            )
        return FetcherVersion(*row) if row is not None else None

    # -- channel mappings -----------------------------------------------------------------------

    def channel_mapping(self, channel_id: str) -> ChannelMapping | None:
        with self._transaction("read the channel's fetcher") as s:
            found = s.first(
                f"SELECT m.config_json, m.created_at, {_VERSION_OF_F}"
                " FROM channel_fetcher_details m JOIN fetcher_details f ON f.id = m.fetcher_id"
                " WHERE m.channel_id = %s AND m.replaced_at IS NULL",
                (channel_id,),
            )
        if found is None:
            return None
        config, mapped_at, *version = found
        return ChannelMapping(
            channel_id, FetcherVersion(*version), self._cipher.unseal(config), mapped_at
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
            current = s.first(
                "SELECT id, fetcher_id, config_json FROM channel_fetcher_details"
                " WHERE channel_id = %s AND replaced_at IS NULL FOR UPDATE",
                (channel_id,),
            )
            if current is not None:
                current_id, current_fetcher, current_config = current
                if current_fetcher == fetcher_id and (
                    config is None or self._cipher.unseal(current_config) == dict(config)
                ):
                    return False
                _close(s, [current_id])
            if config is not None:
                sealed = self._cipher.seal(config)
            else:
                sealed = current[2] if current is not None else {}
            s.execute(
                "INSERT INTO channel_fetcher_details (channel_id, fetcher_id, config_json)"
                " VALUES (%s, %s, %s)",
                (channel_id, fetcher_id, json_param(sealed)),
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
            moving = s.all(
                "SELECT m.id, m.channel_id"
                " FROM channel_fetcher_details m JOIN fetcher_details f ON f.id = m.fetcher_id"
                " WHERE f.structure_id = %s AND m.replaced_at IS NULL AND f.version < %s"
                " ORDER BY m.channel_id FOR UPDATE OF m",
                (structure_id, target.version),
            )
            if not moving:
                return []
            ids = [mapping_id for mapping_id, _ in moving]
            _close(s, ids)
            # The new mappings copy each closed one's (sealed) config.
            s.execute(
                "INSERT INTO channel_fetcher_details (channel_id, fetcher_id, config_json)"
                " SELECT channel_id, %s, config_json FROM channel_fetcher_details"
                " WHERE id = ANY(%s) ORDER BY channel_id",
                (fetcher_id, ids),
            )
            return [channel_id for _, channel_id in moving]

    def channels_for_site(self, structure_id: str) -> list[str]:
        """The channels currently mapped to any version of the site."""
        with self._transaction("list the site's channels") as s:
            rows = s.all(
                "SELECT m.channel_id"
                " FROM channel_fetcher_details m JOIN fetcher_details f ON f.id = m.fetcher_id"
                " WHERE f.structure_id = %s AND m.replaced_at IS NULL ORDER BY m.channel_id",
                (structure_id,),
            )
        return [channel_id for (channel_id,) in rows]


def _advisory_lock(s: Sql, namespace: int, key: str) -> None:
    s.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (namespace, key))


def _row(s: Sql, fetcher_id: int, *, for_update: bool = False) -> FetcherVersion | None:
    lock = " FOR UPDATE" if for_update else ""
    row = s.first(f"SELECT {_VERSION} FROM fetcher_details WHERE id = %s{lock}", (fetcher_id,))
    return FetcherVersion(*row) if row is not None else None


def _locked_row(s: Sql, fetcher_id: int) -> FetcherVersion:
    row = _row(s, fetcher_id, for_update=True)
    if row is None:
        raise ValueError(f"fetcher version {fetcher_id} does not exist")
    return row


def _update(
    s: Sql, fetcher_id: int, values: Mapping[str, Any], *, published_now: bool = False
) -> FetcherVersion:
    # The column names come from this module, never from input.
    sets = [f"{column} = %s" for column in values]
    if published_now:
        sets.append("published_at = now()")
    row = s.first(
        f"UPDATE fetcher_details SET {', '.join(sets)} WHERE id = %s RETURNING {_VERSION}",
        (*values.values(), fetcher_id),
    )
    assert row is not None  # the row is locked by this transaction
    return FetcherVersion(*row)


def _close(s: Sql, mapping_ids: list[int]) -> None:
    s.execute(
        "UPDATE channel_fetcher_details SET replaced_at = now() WHERE id = ANY(%s)",
        (mapping_ids,),
    )


__all__ = ["CHANNEL_LOCK", "SITE_LOCK", "ChannelMapping", "FetcherRegistryMixin", "FetcherVersion"]
