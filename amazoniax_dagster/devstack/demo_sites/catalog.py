"""The catalogue of demo sites: name -> SiteSpec (shape, source type, factory, channel config)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from amazoniax_dagster.devstack.demo_sites.atom_paged import AtomPagedSite
from amazoniax_dagster.devstack.demo_sites.base import DemoSite, ServedSite, SourceType
from amazoniax_dagster.devstack.demo_sites.csv_links import CsvLinksSite
from amazoniax_dagster.devstack.demo_sites.date_window import DateWindowSite
from amazoniax_dagster.devstack.demo_sites.embedded_json import EmbeddedJsonSite
from amazoniax_dagster.devstack.demo_sites.export_links import ExportLinksSite
from amazoniax_dagster.devstack.demo_sites.graphql_relay import GraphqlRelaySite
from amazoniax_dagster.devstack.demo_sites.html_list import HtmlListSite
from amazoniax_dagster.devstack.demo_sites.infinite_scroll import InfiniteScrollSite
from amazoniax_dagster.devstack.demo_sites.js_config_key import JsConfigKeySite
from amazoniax_dagster.devstack.demo_sites.js_xhr import JsXhrSite
from amazoniax_dagster.devstack.demo_sites.json_pages import JsonPagesSite
from amazoniax_dagster.devstack.demo_sites.jsonapi_links import JsonApiLinksSite
from amazoniax_dagster.devstack.demo_sites.keyset_scroll import KeysetScrollSite
from amazoniax_dagster.devstack.demo_sites.load_more import LoadMoreSite
from amazoniax_dagster.devstack.demo_sites.login_cursor import LoginCursorSite
from amazoniax_dagster.devstack.demo_sites.login_table import LoginTableSite
from amazoniax_dagster.devstack.demo_sites.nav_table import NavTableSite
from amazoniax_dagster.devstack.demo_sites.offset_api import OffsetApiSite
from amazoniax_dagster.devstack.demo_sites.one_field_list import OneFieldListSite
from amazoniax_dagster.devstack.demo_sites.rss_feed import RssFeedSite
from amazoniax_dagster.devstack.demo_sites.sitemap_pages import SitemapPagesSite
from amazoniax_dagster.devstack.demo_sites.token_api import TokenApiSite


class SiteFactory(Protocol):
    def __call__(self, *, seed: int = 0, anchor: date | None = None) -> DemoSite: ...


@dataclass(frozen=True)
class SiteSpec:
    name: str
    description: str  # the first line of the site class's docstring
    source_type: SourceType
    factory: SiteFactory

    def channel_config(self, running: ServedSite) -> dict[str, Any]:
        """The html/api channel config a user would send for the served site (same for every
        variant: ``url``, ``channel_name`` and, where the site needs them,
        ``login_credentials``, ``auth_keys``, ``api_documentation_path``)."""
        return running.site.channel_config(running.origin)


SITE_CLASSES: tuple[type[DemoSite], ...] = (
    JsonPagesSite,
    LoginCursorSite,
    TokenApiSite,
    CsvLinksSite,
    RssFeedSite,
    HtmlListSite,
    JsXhrSite,
    InfiniteScrollSite,
    OffsetApiSite,
    AtomPagedSite,
    KeysetScrollSite,
    OneFieldListSite,
    NavTableSite,
    GraphqlRelaySite,
    LoginTableSite,
    JsConfigKeySite,
    DateWindowSite,
    ExportLinksSite,
    EmbeddedJsonSite,
    JsonApiLinksSite,
    LoadMoreSite,
    SitemapPagesSite,
)


def _spec(cls: type[DemoSite]) -> SiteSpec:
    description = (cls.__doc__ or cls.name).strip().splitlines()[0]
    return SiteSpec(cls.name, description, cls.source_type, cls)


CATALOG: dict[str, SiteSpec] = {cls.name: _spec(cls) for cls in SITE_CLASSES}
