"""Customer S3 buckets: ListObjectsV2 and GetObject, signed by botocore, sent by urllib3 with
the channel's own settings only.

A boto3 client took more than twice the CPU per GET and four times per listed key
(``bench/s3_client_ab.py``; figures in docs/performance.md). Only the URL and the two XML
replies (listing, error) are ours; signing (SigV4) and the TLS and proxy settings are
botocore's, connection pooling is urllib3's: one pool per host, reused by every request, so a
GET pays for neither botocore's per-request session work nor urllib3's URL routing.

Nothing of the process's AWS identity or endpoint is used (no credential chain, profile,
config file or ``AWS_ENDPOINT_URL``): a customer's store never gets the process's identity.
The deployment's network settings do apply: ``AWS_CA_BUNDLE`` and the proxy variables.

Keys are listed with ``encoding-type=url`` and unquoted here, so control characters, ``//``
and a trailing ``/`` arrive byte for byte; GETs send the exact key. Each request is sent once:
the job's ``RetryPolicy`` is the one retry layer, so the channel's ``max_simple_retries``
bounds every request and the job's ``retries`` counts every re-send. Errors leave translated.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import quote, unquote_plus, urlencode, urlsplit

from amazoniax_dagster.clients.object_store import virtual_hostable
from amazoniax_dagster.clients.s3 import error_for_code
from amazoniax_dagster.core.errors import ConfigError, TransientError

if TYPE_CHECKING:
    from botocore.auth import S3SigV4Auth
    from botocore.credentials import ReadOnlyCredentials
    from urllib3 import BaseHTTPResponse, HTTPConnectionPool, PoolManager

_ERROR_BODY_LIMIT = 64 * 1024
_PAGE_LIMIT = 64 * 1024 * 1024  # a page of 1,000 keys is well under 1 MiB


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    etag: str | None
    last_modified: datetime | None


@dataclass(frozen=True)
class ReaderSettings:
    """How to reach one customer bucket; ``access_key_id`` None means anonymous requests."""

    endpoint_url: str | None
    access_key_id: str | None
    secret_access_key: str | None
    region: str | None
    max_connections: int = 32
    timeout_seconds: float = 30.0

    def __repr__(self) -> str:
        return f"ReaderSettings(endpoint_url={self.endpoint_url!r}, region={self.region!r})"


class ObjectStream:
    """The body of a GetObject, read in pieces; a body cut short or a lost connection is a
    ``TransientError``."""

    def __init__(self, response: BaseHTTPResponse, what: str) -> None:
        self._response = response
        self._what = what
        length = response.headers.get("content-length")
        self._expected = int(length) if length is not None and length.isdigit() else None
        self._got = 0
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        if self._done:
            return b""
        try:
            data = self._response.read(None if size < 0 else size)
        except _network_errors() as exc:
            self.close()
            raise TransientError(f"cannot {self._what}: {type(exc).__name__}") from exc
        self._got += len(data)
        if not data or size < 0 or self._got == self._expected:
            self._finish()
        return data

    def _finish(self) -> None:
        if self._expected is not None and self._got != self._expected:
            self.close()
            raise TransientError(
                f"cannot {self._what}: the body ended after {self._got} of {self._expected} bytes"
            )
        self._done = True
        self._response.release_conn()  # read to the end: the connection is reused

    def close(self) -> None:
        """Stop early: the connection still carries unread bytes, so it is closed."""
        if not self._done:
            self._done = True
            self._response.close()
            self._response.release_conn()


class S3Reader:
    """A thread-safe reader of one customer endpoint; one per source, its pool shared by the
    engine's transfer threads."""

    def __init__(self, settings: ReaderSettings) -> None:
        self._region = settings.region or "us-east-1"
        if settings.endpoint_url:
            parts = urlsplit(settings.endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"endpoint_url must be an http(s) URL, not {settings.endpoint_url!r}"
                )
            self._base = settings.endpoint_url.rstrip("/")
            self._path_style = True
        else:
            self._base = f"https://s3.{self._region}.amazonaws.com"
            self._path_style = False
        self._auth = _signer(settings, self._region)
        self._http, self._forwarded = _pool_manager(self._base, settings)
        self._pools: dict[str, HTTPConnectionPool] = {}
        self._pools_lock = threading.Lock()

    def list_objects(
        self, bucket: str, prefix: str, *, what: str, delimiter: str | None = None
    ) -> Iterator[ListedObject]:
        """Every object under ``prefix`` (only those right below it with ``delimiter``)."""
        query = {"list-type": "2", "prefix": prefix, "encoding-type": "url"}
        if delimiter:
            query["delimiter"] = delimiter
        seen: set[str] = set()
        while True:
            response = self._send(bucket, "", query, what=what)
            data = _read_bounded(response, _PAGE_LIMIT, what)
            root = _parse_xml(data, what)
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for item in root.iterfind(ns + "Contents"):
                yield _listed(item, ns, what)
            token = root.findtext(ns + "NextContinuationToken")
            if root.findtext(ns + "IsTruncated") != "true" or not token:
                return
            if token in seen:  # a server repeating itself would keep us here forever
                raise TransientError(f"cannot {what}: the listing repeats a continuation token")
            seen.add(token)
            query["continuation-token"] = token

    def get_object(self, bucket: str, key: str, *, what: str) -> ObjectStream:
        """The object's bytes as a stream (read in parts, never whole)."""
        return ObjectStream(self._send(bucket, key, None, what=what), what)

    def close(self) -> None:
        self._http.clear()

    def _send(
        self, bucket: str, key: str, query: Mapping[str, str] | None, *, what: str
    ) -> BaseHTTPResponse:
        """A signed GET; its reply's body is left to read. A reply of 300 or above is raised,
        translated."""
        from botocore.awsrequest import AWSRequest

        url = self._url(bucket, key)
        if query:
            url += "?" + urlencode(sorted(query.items()), quote_via=quote, safe="-_.~")
        request = AWSRequest(method="GET", url=url)
        if self._auth is not None:
            self._auth.add_auth(request)
        # The host's pool, not PoolManager.urlopen: that normalises the path ("a/../b" -> "b").
        scheme, rest = url.split("://", 1)
        host, _, path = rest.partition("/")
        try:
            response: BaseHTTPResponse = self._pool(scheme, host).urlopen(
                "GET",
                url if self._forwarded else "/" + path,  # a forwarding proxy takes the whole URL
                headers=dict(request.headers.items()),
                retries=False,  # sent once: the job's RetryPolicy is the one retry layer
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                enforce_content_length=False,  # ObjectStream checks the length itself
            )
        except _network_errors() as exc:
            raise _network_error(exc, what) from exc
        if response.status >= 300:
            raise _error(response, what)
        return response

    def _pool(self, scheme: str, host: str) -> HTTPConnectionPool:
        """The connection pool of one host (one per bucket when virtual-hosted)."""
        pool = self._pools.get(host)
        if pool is None:
            with self._pools_lock:
                pool = self._pools.get(host)
                if pool is None:
                    pool = self._http.connection_from_url(f"{scheme}://{host}")
                    self._pools[host] = pool
        return pool

    def _url(self, bucket: str, key: str) -> str:
        path = quote(key, safe="/~")
        if self._path_style or not virtual_hostable(bucket):
            base = f"{self._base}/{quote(bucket, safe='')}"
            return f"{base}/{path}" if key else base
        scheme, host = self._base.split("://", 1)
        return f"{scheme}://{bucket}.{host}/{path}"


class _Keys(NamedTuple):
    """The channel's keys in the shape of botocore's ``ReadOnlyCredentials``, which the signer
    reads (``botocore.credentials`` and its credential chain are not needed for fixed keys)."""

    access_key: str
    secret_key: str
    token: str | None = None


def _signer(settings: ReaderSettings, region: str) -> S3SigV4Auth | None:
    """botocore's SigV4 for S3 with the channel's keys, or None: anonymous requests."""
    if not settings.access_key_id:
        return None
    from botocore.auth import S3SigV4Auth

    keys = _Keys(settings.access_key_id, settings.secret_access_key or "")
    return S3SigV4Auth(cast("ReadOnlyCredentials", keys), "s3", region)


def _pool_manager(base: str, settings: ReaderSettings) -> tuple[PoolManager, bool]:
    """urllib3's pools for ``base`` with botocore's TLS context and CA bundle (the deployment's
    ``AWS_CA_BUNDLE``, else botocore's own) and the proxy the environment names for ``base``;
    True when that proxy forwards plain-HTTP requests (they then name the whole URL)."""
    from botocore.httpsession import ProxyConfiguration, create_urllib3_context, get_cert_path
    from botocore.utils import get_environ_proxies
    from urllib3 import PoolManager, ProxyManager, Timeout

    options: dict[str, Any] = {
        "maxsize": settings.max_connections,
        "timeout": Timeout(connect=settings.timeout_seconds, read=settings.timeout_seconds),
        "ssl_context": create_urllib3_context(),
        "cert_reqs": "CERT_REQUIRED",
        "ca_certs": os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True),
    }
    proxies = ProxyConfiguration(proxies=get_environ_proxies(base))
    proxy = proxies.proxy_url_for(base)
    if not proxy:
        return PoolManager(**options), False
    headers = proxies.proxy_headers_for(proxy)
    manager = ProxyManager(proxy, proxy_headers=headers, **options)
    return manager, base.startswith("http://")


def _network_error(exc: BaseException, what: str) -> Exception:
    """A request that got no reply: a TLS or proxy failure is the configuration's, the rest
    (refused, reset, timed out) is transient."""
    from urllib3.exceptions import ProxyError, SSLError

    if isinstance(exc, SSLError):
        return ConfigError(f"cannot {what}: SSL validation failed: {exc}")
    if isinstance(exc, ProxyError):
        return ConfigError(f"cannot {what}: cannot reach the proxy: {type(exc).__name__}")
    return TransientError(f"cannot {what}: {type(exc).__name__}")


def _network_errors() -> tuple[type[BaseException], ...]:
    from urllib3.exceptions import HTTPError

    return (HTTPError, OSError)


def _read_bounded(response: BaseHTTPResponse, limit: int, what: str) -> bytes:
    try:
        data = response.read(limit + 1)
    except _network_errors() as exc:
        response.close()
        raise TransientError(f"cannot {what}: {type(exc).__name__}") from exc
    finally:
        response.release_conn()
    if len(data) > limit:
        raise TransientError(f"cannot {what}: the server's reply is larger than expected")
    return data


def _parse_xml(data: bytes, what: str) -> Any:
    """A reply's XML, refusing DTDs and entities (an endpoint may be a customer's).

    Entities can only be declared in a DOCTYPE, which starts with ``<!``. Every encoding expat
    reads spells that as those two bytes, except UTF-16 and UTF-32, which put NULs between
    them. So a reply with neither ``<!`` nor a NUL byte declares nothing, and the standard
    library's C parser reads it; anything else goes through defusedxml, which refuses a DTD.
    """
    from xml.etree.ElementTree import ParseError

    try:
        if b"<!" not in data and b"\x00" not in data:
            from xml.etree.ElementTree import fromstring

            return fromstring(data)
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import fromstring as defused_fromstring

        try:
            return defused_fromstring(data, forbid_dtd=True)
        except DefusedXmlException as exc:
            raise ParseError(str(exc)) from exc
    except ParseError as exc:
        raise TransientError(f"cannot {what}: the server's reply is not valid XML") from exc


def _error(response: BaseHTTPResponse, what: str) -> Exception:
    """The error tree's reading of an error reply: its S3 ``Code`` or else its status."""
    try:
        data = response.read(_ERROR_BODY_LIMIT) or b""
    except _network_errors():
        data = b""
    finally:
        response.close()
        response.release_conn()
    code = message = ""
    if data.lstrip().startswith(b"<"):
        try:
            root = _parse_xml(data, what)
            code, message = root.findtext("Code") or "", root.findtext("Message") or ""
        except TransientError:
            pass  # a proxy's page: the status says enough
    value = response.headers.get("retry-after")
    try:
        retry_after = float(value) if value is not None else None
    except ValueError:
        retry_after = None
    status = response.status
    return error_for_code(
        code or str(status), status, what, message=message, retry_after=retry_after
    )


def _listed(item: Any, ns: str, what: str) -> ListedObject:
    text = item.findtext
    key, size = text(ns + "Key"), text(ns + "Size")
    if key is None or size is None or not size.isdigit():
        raise TransientError(f"cannot {what}: the listing has an entry without key or size")
    modified = text(ns + "LastModified")
    etag = (text(ns + "ETag") or "").strip('"') or None
    return ListedObject(
        key=unquote_plus(key),
        size=int(size),
        etag=etag,
        last_modified=datetime.fromisoformat(modified) if modified else None,
    )


__all__ = ["ListedObject", "ObjectStream", "ReaderSettings", "S3Reader"]
