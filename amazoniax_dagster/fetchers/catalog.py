"""Published fetcher versions as the routing sees them: the DB says which version a channel
or site uses, the Git cache holds its files, the loader makes it runnable."""

from __future__ import annotations

from dataclasses import dataclass

from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.db.fetcher_versions import FetcherVersion
from amazoniax_dagster.fetchers.base import LoadedFetcher
from amazoniax_dagster.fetchers.loader import load_fetcher
from amazoniax_dagster.fetchers.registry import FetcherRepo


@dataclass
class RegistryCatalog:
    db: FetcherDB
    repo: FetcherRepo

    def for_channel(self, channel_id: str) -> LoadedFetcher | None:
        version = self.db.channel_fetcher(channel_id)
        return self.load(version, how="mapped") if version else None

    def for_site(self, site: str) -> LoadedFetcher | None:
        version = self.db.latest_fetcher(site)
        return self.load(version, how="site") if version else None

    def map_channel(self, channel_id: str, fetcher: LoadedFetcher) -> None:
        if fetcher.fetcher_id is not None:
            self.db.map_channel(channel_id, fetcher.fetcher_id)

    def load(self, version: FetcherVersion, *, how: str) -> LoadedFetcher:
        stored = self.repo.read(version.fetcher_name)
        return LoadedFetcher(
            name=version.fetcher_name,
            fetcher=load_fetcher(version.fetcher_name, stored.files),
            version=version.version,
            fetcher_id=version.id,
            how=how,
        )
