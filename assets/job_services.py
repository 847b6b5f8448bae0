"""What a channel job needs in a Dagster step, built from the step's resources (one place for
``channel_files`` and for ``fetcher_code``'s last op, which runs the job that asked)."""

from typing import TYPE_CHECKING

import dagster as dg

from resources import (
    FetcherDBResource,
    FetcherRepoResource,
    FetchSettings,
    KafkaResource,
    OutputBucketResource,
    PythonFetchersResource,
)

if TYPE_CHECKING:
    from amazoniax_dagster.fetchers.catalog import RegistryCatalog
    from amazoniax_dagster.jobs.services import JobServices


def job_services(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    *,
    fetcher_db: FetcherDBResource,
    output_bucket: OutputBucketResource,
    kafka: KafkaResource,
    fetch_settings: FetchSettings,
    fetcher_repo: FetcherRepoResource,
    python_fetchers: PythonFetchersResource,
) -> "JobServices":
    from amazoniax_dagster.jobs.services import JobServices

    db = fetcher_db.get_db()

    def fetcher_catalog() -> "RegistryCatalog":
        # Imported here: S3 and FTP jobs never touch the fetchers repository.
        from amazoniax_dagster.fetchers.catalog import RegistryCatalog

        return RegistryCatalog(db, fetcher_repo.get_repo())

    return JobServices(
        db=db,
        output=output_bucket.get_bucket(max_connections=fetch_settings.max_workers * 2),
        bus=kafka.get_bus(),
        topics=kafka.topics(),
        policy=fetch_settings.network_policy(),
        max_workers=fetch_settings.max_workers,
        fetcher_catalog=fetcher_catalog,  # built on first use
        python_launcher=python_fetchers.launcher(context),
        python_limits=python_fetchers.limits(),
    )
