"""Which fetcher a web/API job runs (docs/architecture.md, "Fetchers")."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from amazoniax_dagster.core.errors import ExhaustedError, NoFetcherError
from amazoniax_dagster.core.messages import Flow, SourceType, WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.fetchers.base import FetchContext, FetchReport, LoadedFetcher
from amazoniax_dagster.fetchers.routing import GenerationRequest, choose_fetcher


class _Nothing:
    kind = "recipe"

    def fetch(self, ctx: FetchContext) -> FetchReport:
        return FetchReport()


def _loaded(name: str, how: str = "mapped") -> LoadedFetcher:
    return LoadedFetcher(name, _Nothing(), version=1, fetcher_id=1, how=how)


@dataclass
class Catalog:
    """Published versions in memory (the real one reads the DB and Git)."""

    by_channel: dict[str, LoadedFetcher] = field(default_factory=dict)
    by_site: dict[str, LoadedFetcher] = field(default_factory=dict)

    def for_channel(self, channel_id: str) -> LoadedFetcher | None:
        return self.by_channel.get(channel_id)

    def for_site(self, site: str) -> LoadedFetcher | None:
        return self.by_site.get(site)

    def map_channel(self, channel_id: str, fetcher: LoadedFetcher) -> None:
        self.by_channel[channel_id] = fetcher


@dataclass
class Generator:
    asked: list[GenerationRequest] = field(default_factory=list)

    def generate(self, request: GenerationRequest) -> LoadedFetcher:
        self.asked.append(request)
        return _loaded("example_com_fetcher_v2", how="healed" if request.heal else "generated")


def _request(source_type: SourceType = SourceType.HTML, **config: object) -> GenerationRequest:
    web = WebSourceConfig.model_validate({"url": "https://www.example.com/data"} | config)
    return GenerationRequest("example.com", "ch1", "job1", source_type, web)


POLICY = NetworkPolicy()


def test_the_mapped_version_runs_first() -> None:
    catalog = Catalog(by_channel={"ch1": _loaded("v1")}, by_site={"example.com": _loaded("v3")})
    assert choose_fetcher(_request(), Flow.EXISTING, catalog, None, POLICY).name == "v1"


def test_a_new_channel_of_a_known_site_reuses_and_is_mapped_to_its_fetcher() -> None:
    catalog = Catalog(by_site={"example.com": _loaded("example_com_fetcher_v3", how="site")})
    chosen = choose_fetcher(_request(), Flow.NEW, catalog, None, POLICY)
    assert chosen.name == "example_com_fetcher_v3" and chosen.how == "site"
    assert catalog.by_channel["ch1"].name == "example_com_fetcher_v3"


def test_a_plain_api_channel_gets_the_generic_fetcher() -> None:
    request = _request(SourceType.API, auth_keys={"token": "t0k"})
    chosen = choose_fetcher(request, Flow.NEW, Catalog(), None, POLICY)
    assert chosen.name == "generic_api" and chosen.how == "generic"


def test_an_unknown_site_is_generated_or_fails_saying_why() -> None:
    generator = Generator()
    chosen = choose_fetcher(_request(), Flow.NEW, Catalog(), generator, POLICY)
    assert chosen.how == "generated" and generator.asked[0].heal is False
    with pytest.raises(NoFetcherError, match="has no fetcher yet"):
        choose_fetcher(_request(), Flow.NEW, Catalog(), None, POLICY)


def test_heal_mode_regenerates_with_the_current_version_as_baseline() -> None:
    generator = Generator()
    catalog = Catalog(by_channel={"ch1": _loaded("example_com_fetcher_v1")})
    chosen = choose_fetcher(_request(), Flow.HEAL, catalog, generator, POLICY)
    assert chosen.how == "healed"
    (asked,) = generator.asked
    assert asked.heal and asked.current is not None
    assert asked.current.name == "example_com_fetcher_v1"
    with pytest.raises(ExhaustedError):
        choose_fetcher(_request(), Flow.HEAL, catalog, None, POLICY)
