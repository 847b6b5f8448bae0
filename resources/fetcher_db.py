"""The fetcher DB (PostgreSQL) as a resource: a thin wrapper that builds a ``FetcherDB``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr

if TYPE_CHECKING:
    from amazoniax_dagster.db import FetcherDB


class FetcherDBResource(dg.ConfigurableResource):
    """``database_url``: SQLAlchemy URL; ``secret_key``: Fernet key sealing channel secrets."""

    database_url: str
    secret_key: str

    _db: FetcherDB | None = PrivateAttr(default=None)

    def get_db(self) -> FetcherDB:
        if self._db is None:
            from amazoniax_dagster.core.sealing import SecretCipher
            from amazoniax_dagster.db import FetcherDB

            self._db = FetcherDB(self.database_url, SecretCipher(self.secret_key))
        return self._db

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
