"""The fetcher DB (PostgreSQL): models, migrations and the ``FetcherDB`` repository."""

from amazoniax_dagster.db.repository import FetcherDB
from amazoniax_dagster.db.rows import (
    ChannelHistory,
    DeliveredFile,
    DeliveredOutput,
    JobRecord,
    RecentOutputs,
    RetryConfig,
    SourceIdentity,
    StoredChannel,
)

__all__ = [
    "ChannelHistory",
    "DeliveredFile",
    "DeliveredOutput",
    "FetcherDB",
    "JobRecord",
    "RecentOutputs",
    "RetryConfig",
    "SourceIdentity",
    "StoredChannel",
]
