"""Outbound URL safety: where a URL from a channel config or recipe may point.

A configured URL never reaches loopback, link-local, private (RFC 1918, ULA, CGNAT),
unspecified, multicast, reserved or cloud-metadata addresses, unless the deployment allows
those networks in ``AMAZONIAX_ALLOWED_NETWORKS`` (a comma-separated CIDR list, read by the
caller and handed to :meth:`NetworkPolicy.from_env`). Metadata endpoints stay refused even
inside an allowed network unless the policy also sets ``allow_metadata``.

Every address a host resolves to must pass, so a name that resolves to one public and one
private address is refused. IP literals are parsed the way browsers and ``inet_aton`` read
them (``2130706433``, ``0x7f.1``, ``0177.0.0.1``), IPv4-mapped and 6to4 IPv6 addresses are
judged by the IPv4 address inside.

The check happens before connecting; an HTTP client must also call :meth:`check_redirect`
on every redirect it follows.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from amazoniax_dagster.core.errors import ConfigError, TransientError, UnsafeURLError
from amazoniax_dagster.core.redaction import redact_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

ALLOWED_NETWORKS_ENV = "AMAZONIAX_ALLOWED_NETWORKS"

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, Azure, GCP, OpenStack, DigitalOcean ... instance metadata
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.169.253",  # AWS VPC DNS
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS DNS over IPv6
    )
)
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ftps": 990, "sftp": 22}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_HOST_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")


def default_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, via the system resolver."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class NetworkPolicy:
    """Which outbound URLs are allowed; the default allows public http(s) addresses only."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_schemes: frozenset[str] = frozenset({"http", "https"})
    allow_metadata: bool = False

    @classmethod
    def from_env(cls, value: str | None, *, allow_metadata: bool = False) -> NetworkPolicy:
        """Parse ``AMAZONIAX_ALLOWED_NETWORKS`` (e.g. ``"127.0.0.0/8,10.1.0.0/16"``)."""
        networks: list[IPNetwork] = []
        for entry in (value or "").split(","):
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"{ALLOWED_NETWORKS_ENV}: {entry!r} is not a network in CIDR notation "
                    "(expected e.g. 10.1.0.0/16 or fd00::/8)"
                ) from exc
        return cls(allowed_networks=tuple(networks), allow_metadata=allow_metadata)

    def check_url(self, url: str, *, resolve: Resolver | None = None) -> None:
        """Raise :class:`UnsafeURLError` unless every address ``url`` reaches is allowed."""
        shown = redact_url(url)
        if _CONTROL_OR_SPACE.search(url):
            raise UnsafeURLError(f"refusing {shown!r}: the URL contains whitespace or controls")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UnsafeURLError(f"refusing {shown!r}: malformed URL ({exc})") from exc
        if parts.scheme not in self.allowed_schemes:
            allowed = ", ".join(sorted(self.allowed_schemes))
            raise UnsafeURLError(
                f"refusing {shown!r}: scheme {parts.scheme!r} is not allowed (allowed: {allowed})"
            )
        if "\\" in parts.netloc or parts.netloc.count("@") > 1:
            raise UnsafeURLError(
                f"refusing {shown!r}: ambiguous authority (clients disagree on the host "
                "when it holds a backslash or several '@')"
            )
        host = _normalize_host(parts.hostname or "", shown)
        if host in METADATA_HOSTNAMES and not self.allow_metadata:
            raise UnsafeURLError(
                f"refusing {shown!r}: host {host!r} is a cloud metadata endpoint; it stays "
                f"refused even inside {ALLOWED_NETWORKS_ENV} unless the network policy sets "
                "allow_metadata"
            )
        literal = _parse_ip_literal(host, shown)
        if literal is not None:
            self._check_ip(literal, f"{shown!r}: host {host!r} is")
            return
        addresses = self._resolve(host, port or _DEFAULT_PORTS.get(parts.scheme, 0), resolve)
        for address in addresses:
            where = f"{shown!r}: host {host!r} resolves to"
            self._check_ip(_parse_address(address, where), where)

    def precheck_url(self, url: str) -> None:
        """:meth:`check_url` without DNS: scheme, authority, metadata names and literal
        addresses. A host name passes here and is checked when the job connects."""
        try:
            self.check_url(url, resolve=_no_lookup)
        except _LookupSkipped:
            pass

    def precheck_host(self, host: str, port: int) -> None:
        """:meth:`check_host` without DNS (see :meth:`precheck_url`)."""
        try:
            self.check_host(host, port, resolve=_no_lookup)
        except _LookupSkipped:
            pass

    def check_redirect(
        self, from_url: str, to_url: str, *, resolve: Resolver | None = None
    ) -> None:
        """Check the absolute target of a redirect from ``from_url`` to ``to_url``."""
        self.check_url(urljoin(from_url, to_url), resolve=resolve)

    def check_host(self, host: str, port: int, *, resolve: Resolver | None = None) -> list[str]:
        """Check a bare host (FTP, SFTP: no URL) like :meth:`check_url` checks a URL's host.

        Returns every address ``host`` resolves to, each one allowed, so that the caller
        connects to exactly the addresses that were checked (a second lookup at connect time
        could answer differently: DNS rebinding).
        """
        shown = f"{host}:{port}"
        if not host or _CONTROL_OR_SPACE.search(host) or any(c in host for c in "/\\@?#"):
            raise UnsafeURLError(f"refusing host {host!r}: not a plain host name or address")
        name = _normalize_host(host.removeprefix("[").removesuffix("]"), shown)
        if name in METADATA_HOSTNAMES and not self.allow_metadata:
            raise UnsafeURLError(
                f"refusing {shown!r}: host {name!r} is a cloud metadata endpoint; it stays "
                f"refused even inside {ALLOWED_NETWORKS_ENV} unless the network policy sets "
                "allow_metadata"
            )
        literal = _parse_ip_literal(name, shown)
        if literal is not None:
            self._check_ip(literal, f"{shown!r}: host {name!r} is")
            return [str(literal)]
        addresses = list(dict.fromkeys(self._resolve(name, port, resolve)))
        for address in addresses:
            where = f"{shown!r}: host {name!r} resolves to"
            self._check_ip(_parse_address(address, where), where)
        return addresses

    def check_address(self, ip: str) -> None:
        """Raise :class:`UnsafeURLError` unless connecting to ``ip`` is allowed."""
        self._check_ip(_parse_address(ip, "address"), "address")

    def _resolve(self, host: str, port: int, resolve: Resolver | None) -> list[str]:
        try:
            addresses = (resolve or default_resolve)(host, port)
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:
                raise TransientError(f"cannot resolve host {host!r} right now: {exc}") from exc
            raise ConfigError(f"host {host!r} does not resolve: {exc}") from exc
        except (OSError, UnicodeError) as exc:
            raise ConfigError(f"cannot resolve host {host!r}: {exc}") from exc
        if not addresses:
            raise UnsafeURLError(f"refusing host {host!r}: it resolves to no address")
        return addresses

    def _check_ip(self, ip: IPAddress, where: str) -> None:
        """Refuse ``ip``; ``where`` starts the message ("'http://x/': host 'x' resolves to")."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip in METADATA_ADDRESSES and not self.allow_metadata:
            raise UnsafeURLError(
                f"refusing {where} {ip}, a cloud metadata address; it stays refused even inside "
                f"{ALLOWED_NETWORKS_ENV} unless the network policy sets allow_metadata"
            )
        if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
            # A 6to4 address is judged by the IPv4 it embeds (whether 2002::/16 itself
            # counts as private differs between Python patch releases).
            self._check_ip(ip.sixtofour, f"{where} {ip}, which embeds")
            return
        reason = _forbidden_reason(ip)
        if reason is not None and not any(ip in net for net in self.allowed_networks):
            raise UnsafeURLError(
                f"refusing {where} {ip}, {reason}; to allow it, add its network "
                f"(e.g. {ipaddress.ip_network(ip)}) to {ALLOWED_NETWORKS_ENV}"
            )


class _LookupSkipped(Exception):
    """A pre-check reached a host name: DNS is left to the connection."""


def _no_lookup(host: str, port: int) -> list[str]:
    raise _LookupSkipped(host)


def _forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or None when it is one."""
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_multicast, "a multicast address"),
        (ip in _CGNAT, "a shared (CGNAT) address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a globally routable address"),
    )
    return next((reason for hit, reason in checks if hit), None)


def _normalize_host(host: str, shown: str) -> str:
    """Lower-case, IDNA-map (full-width digits, ideographic dots) and drop one trailing dot."""
    if not host:
        raise UnsafeURLError(f"refusing {shown!r}: the URL has no host")
    if ":" in host:  # IPv6 literal; urlsplit already removed the brackets
        return host
    try:
        host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host
    except UnicodeError as exc:
        raise UnsafeURLError(f"refusing {shown!r}: invalid host name ({exc})") from exc
    host = host.removesuffix(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise UnsafeURLError(f"refusing {shown!r}: invalid host name {host!r}")
    return host


def _parse_ip_literal(host: str, shown: str) -> IPAddress | None:
    """The address an IP-literal host names, in any form a client accepts, else None.

    Like WHATWG URL and ``inet_aton``: 1 to 4 dot-separated numbers, each decimal, octal
    (leading 0) or hex (0x); the last one fills the remaining bytes (``127.1``, ``2130706433``).
    """
    if ":" in host:
        return _parse_address(host, f"{shown!r}: host")
    labels = host.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None  # a host name: a numeric last label is what makes it an IPv4 literal
    invalid = UnsafeURLError(f"refusing {shown!r}: {host!r} is not a valid IPv4 address")
    try:
        *head, last = [_parse_ipv4_number(label) for label in labels]
    except ValueError as exc:
        raise invalid from exc
    if len(head) > 3 or any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        raise invalid
    value = sum(n << (8 * (3 - i)) for i, n in enumerate(head)) + last
    return ipaddress.IPv4Address(value)


def _parse_ipv4_number(label: str) -> int:
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)
    return int(label, 10)


def _parse_address(text: str, where: str) -> IPAddress:
    """Parse an address, without brackets or an IPv6 zone (``%eth0``), which no rule uses."""
    try:
        return ipaddress.ip_address(text.removeprefix("[").removesuffix("]").partition("%")[0])
    except ValueError as exc:
        raise UnsafeURLError(f"refusing {where} {text!r}, which is not an IP address") from exc


__all__ = [
    "ALLOWED_NETWORKS_ENV",
    "METADATA_ADDRESSES",
    "METADATA_HOSTNAMES",
    "NetworkPolicy",
    "default_resolve",
]
