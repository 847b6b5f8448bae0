"""Which fetcher runs a web/API job (docs/architecture.md, "Fetchers").

In order: heal mode regenerates; otherwise the channel's mapped version, else the site's
latest published version (the channel is mapped to it), else — for an API channel with a
plain config — the generic API fetcher, else a newly generated fetcher. Without a generator
the last step fails with a status that says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from amazoniax_dagster.core.errors import ConfigError, ExhaustedError, NoFetcherError
from amazoniax_dagster.core.messages import FetcherJob, Flow, SourceType, WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.sites import structure_id
from amazoniax_dagster.fetchers.base import LoadedFetcher

if TYPE_CHECKING:
    from amazoniax_dagster.db import FetcherDB

log = logging.getLogger(__name__)


class FetcherCatalog(Protocol):
    """Published fetcher versions (DB + Git)."""

    def for_channel(self, channel_id: str) -> LoadedFetcher | None: ...

    def for_site(self, site: str) -> LoadedFetcher | None: ...

    def map_channel(self, channel_id: str, fetcher: LoadedFetcher) -> None: ...


@dataclass(frozen=True)
class GenerationRequest:
    site: str
    channel_id: str
    job_id: str
    source_type: SourceType
    config: WebSourceConfig  # holds secrets
    heal: bool = False
    current: LoadedFetcher | None = None  # heal mode's baseline


class FetcherGenerator(Protocol):
    """Generates, validates and publishes a fetcher version, then returns it."""

    def generate(self, request: GenerationRequest) -> LoadedFetcher: ...


def choose_fetcher(
    request: GenerationRequest,
    flow: Flow,
    catalog: FetcherCatalog,
    generator: FetcherGenerator | None,
    policy: NetworkPolicy,
) -> LoadedFetcher:
    if flow == Flow.HEAL:
        if generator is None:
            raise ExhaustedError(
                f"heal mode for site {request.site} needs fetcher generation, "
                "which this deployment does not have"
            )
        current = catalog.for_channel(request.channel_id) or catalog.for_site(request.site)
        return generator.generate(replace(request, heal=True, current=current))
    mapped = catalog.for_channel(request.channel_id)
    if mapped is not None:
        return mapped
    shared = catalog.for_site(request.site)
    if shared is not None:
        log.info("channel %s reuses %s of site %s", request.channel_id, shared.name, request.site)
        catalog.map_channel(request.channel_id, shared)
        return replace(shared, how="site")
    if request.source_type == SourceType.API and is_plain_api(request.config):
        from amazoniax_dagster.fetchers.generic_api import generic_api_fetcher

        return generic_api_fetcher(request.config, policy=policy)
    if generator is None:
        raise NoFetcherError(
            f"site {request.site} has no fetcher yet, and fetcher generation is not "
            "available in this deployment; publish a fetcher for the site or enable generation"
        )
    return generator.generate(request)


def needs_generation(db: FetcherDB, job: FetcherJob, config: dict[str, Any]) -> bool:
    """Whether a web/API job must wait for a fetcher to be generated (the Kafka sensor then
    runs ``fetcher_code`` for the site first): heal mode, or a site with no fetcher that the
    generic API fetcher cannot serve. A config that does not parse is the job's own error."""
    if job.flow == Flow.HEAL:
        return True
    if db.channel_fetcher(job.channel_id) is not None:
        return False
    try:
        web = WebSourceConfig.model_validate(config)
        site = structure_id(web.url)
    except (ValidationError, ConfigError):
        return False
    if db.latest_fetcher(site) is not None:
        return False
    return not (job.source_type == SourceType.API and is_plain_api(web))


def is_plain_api(config: WebSourceConfig) -> bool:
    """An API channel the generic fetcher can serve: an endpoint URL with key-style auth
    (or none) or an OpenAPI document, and no login form or navigation to reproduce."""
    return not config.login_credentials and not config.navigation_details
