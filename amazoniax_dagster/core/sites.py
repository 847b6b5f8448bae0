"""``structure_id``: which site a channel URL belongs to (the base domain).

Channels of one site share one fetcher, and the run queue limits runs per site. The site is
the registrable domain, from the Public Suffix List bundled with tldextract (never downloaded
at run time), private suffixes included (``a.github.io`` and ``b.github.io`` are two sites).
For IP literals and single-label hosts (``127.0.0.1``, ``localhost``) the port is part of it,
so two local test sites never share a fetcher.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from amazoniax_dagster.core.errors import ConfigError

if TYPE_CHECKING:
    import tldextract


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    import tldextract

    return tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
    )


def structure_id(url: str) -> str:
    """``https://www.amazon.co.uk/x`` -> ``amazon.co.uk``; ``http://127.0.0.1:8080/`` ->
    ``127.0.0.1:8080``. ConfigError for a URL without a host."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".").lower()
    if not host or parts.scheme not in ("http", "https"):
        raise ConfigError(f"channel url {url!r} has no http(s) host")
    registrable = _extractor()(host).top_domain_under_public_suffix
    if registrable:
        return registrable
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ConfigError(f"channel url {url!r} has an invalid port") from exc
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}"


def site_of(source_type: str, config: Mapping[str, Any]) -> str | None:
    """The run queue's per-site key: the site of a web/API channel, the host of an FTP
    channel (servers cap connections per user); None for S3, which needs no such limit."""
    if source_type in ("html", "api") and isinstance(config.get("url"), str):
        try:
            return structure_id(config["url"])
        except ConfigError:
            return None
    if source_type == "ftp" and isinstance(config.get("host"), str):
        return f"ftp:{config['host'].lower()}"
    return None
