"""Outbound URL safety: table-driven, with a fake resolver (no real DNS)."""

from __future__ import annotations

import ipaddress
import re
import socket

import pytest

from amazoniax_dagster.core.errors import ConfigError, TransientError, UnsafeURLError
from amazoniax_dagster.core.netpolicy import NetworkPolicy

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

FAKE_DNS: dict[str, list[str]] = {
    "example.com": [PUBLIC_V4, PUBLIC_V6],
    "public.example": [PUBLIC_V4],
    "localhost": ["127.0.0.1", "::1"],
    "mixed.example": [PUBLIC_V4, "10.0.0.1"],  # one public, one private: refused
    "rebind.example": ["::1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "internal.example": ["10.0.0.7"],
    "corp.example": ["10.1.5.5"],
    "metadata.google.internal": ["169.254.169.254"],
    "imds.example": ["fd00:ec2::254"],
    "nowhere.example": [],
}


class FakeResolver:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return FAKE_DNS[host]


def check(url: str, policy: NetworkPolicy | None = None) -> FakeResolver:
    resolver = FakeResolver()
    (policy or NetworkPolicy()).check_url(url, resolve=resolver)
    return resolver


ALLOWED = [
    ("http://[2002:5db8:d822::]/", []),  # 6to4 of a public IPv4: judged by what it embeds
    ("https://example.com/", [("example.com", 443)]),
    ("http://example.com/path?q=1#frag", [("example.com", 80)]),
    ("https://example.com:8443/x", [("example.com", 8443)]),
    ("HTTPS://Example.COM./", [("example.com", 443)]),
    ("https://user:pass@public.example/", [("public.example", 443)]),
    (f"http://{PUBLIC_V4}/", []),
    ("http://1572395042/", []),  # 93.184.216.34 as one decimal number
    (f"https://[{PUBLIC_V6}]:8443/", []),
    ("https://[::ffff:93.184.216.34]/", []),
]


@pytest.mark.parametrize(("url", "resolved"), ALLOWED)
def test_public_urls_pass_and_resolve_only_host_names(
    url: str, resolved: list[tuple[str, int]]
) -> None:
    assert check(url).calls == resolved


REFUSED = [
    # scheme and shape
    ("ftp://public.example/", "scheme 'ftp' is not allowed (allowed: http, https)"),
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://public.example:70/", "scheme 'gopher' is not allowed"),
    ("//public.example/", "scheme '' is not allowed"),
    ("http:///path", "the URL has no host"),
    ("http://exa mple.com/", "the URL contains whitespace or controls"),
    ("http://127.0.0.1\n.public.example/", "the URL contains whitespace or controls"),
    ("http://public.example:99999/", "malformed URL"),
    ("http://[::1/", "malformed URL"),
    # userinfo and authority tricks
    ("http://public.example@127.0.0.1/", "host '127.0.0.1' is 127.0.0.1, a loopback address"),
    ("http://127.0.0.1\\@public.example/", "ambiguous authority"),
    ("http://public.example\\@127.0.0.1/", "ambiguous authority"),
    ("http://a@public.example@127.0.0.1/", "ambiguous authority"),
    ("http://u:hunter2@x@127.0.0.1/", "refusing 'http://u:***@127.0.0.1/': ambiguous authority"),
    ("http://%31%32%37.0.0.1/", "invalid host name '%31%32%37.0.0.1'"),
    ("http://public.example../", "invalid host name 'public.example.'"),
    # loopback in every spelling
    ("http://127.0.0.1/", "127.0.0.1, a loopback address"),
    ("http://127.0.0.1./", "127.0.0.1, a loopback address"),
    ("http://2130706433/", "host '2130706433' is 127.0.0.1, a loopback address"),
    ("http://0x7f.1/", "host '0x7f.1' is 127.0.0.1, a loopback address"),
    ("http://0x7f000001/", "127.0.0.1, a loopback address"),
    ("http://0177.0.0.1/", "127.0.0.1, a loopback address"),
    ("http://127.1/", "127.0.0.1, a loopback address"),
    ("http://0x7F.0.0.1/", "127.0.0.1, a loopback address"),
    ("http://\uff11\uff12\uff17\u3002\uff10.\uff10.\uff11/", "127.0.0.1, a loopback address"),
    ("http://[::1]/", "host '::1' is ::1, a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "127.0.0.1, a loopback address"),
    ("http://[::ffff:7f00:1]:8080/", "127.0.0.1, a loopback address"),
    ("http://[2002:7f00:1::]/", "2002:7f00:1::, which embeds 127.0.0.1, a loopback address"),
    ("http://localhost/", "host 'localhost' resolves to 127.0.0.1, a loopback address"),
    ("http://LOCALHOST./", "host 'localhost' resolves to 127.0.0.1"),
    ("http://rebind.example/", "host 'rebind.example' resolves to ::1, a loopback address"),
    ("http://127.0.0.1.nip.io/", "resolves to 127.0.0.1, a loopback address"),
    ("http://mixed.example/", "resolves to 10.0.0.1, a private address"),
    # private, shared, link-local, special
    ("http://10.0.0.5/", "10.0.0.5, a private address"),
    ("http://172.16.3.4/", "172.16.3.4, a private address"),
    ("http://172.31.255.255/", "172.31.255.255, a private address"),
    ("http://192.168.1.1:8080/", "192.168.1.1, a private address"),
    ("http://100.64.0.1/", "100.64.0.1, a shared (CGNAT) address"),
    ("http://[fc00::1]/", "fc00::1, a private address"),
    ("http://[fd12:3456::1]/", "fd12:3456::1, a private address"),
    ("http://169.254.1.1/", "169.254.1.1, a link-local address"),
    ("http://[fe80::1%25eth0]/", "fe80::1, a link-local address"),
    ("http://0.0.0.0/", "0.0.0.0, the unspecified address"),
    ("http://0/", "host '0' is 0.0.0.0, the unspecified address"),
    ("http://[::]/", "host '::' is ::, the unspecified address"),
    ("http://224.0.0.1/", "224.0.0.1, a multicast address"),
    ("http://[ff02::1]/", "ff02::1, a multicast address"),
    ("http://240.0.0.1/", "240.0.0.1, a reserved address"),
    ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1, a reserved address"),
    ("http://internal.example/", "resolves to 10.0.0.7, a private address"),
    # cloud metadata, by address and by name
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a cloud metadata address"),
    ("http://0xa9fea9fe/", "169.254.169.254, a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254, a cloud metadata address"),
    ("http://[::ffff:169.254.169.254]/", "169.254.169.254, a cloud metadata address"),
    ("http://192.0.0.192/", "192.0.0.192, a cloud metadata address"),
    ("http://100.100.100.200/", "100.100.100.200, a cloud metadata address"),
    ("http://metadata.google.internal/", "'metadata.google.internal' is a cloud metadata endpoint"),
    ("http://imds.example/", "resolves to fd00:ec2::254, a cloud metadata address"),
    # malformed IPv4 literals are refused rather than guessed at
    ("http://256.1.1.1/", "'256.1.1.1' is not a valid IPv4 address"),
    ("http://1.2.3.4.5/", "'1.2.3.4.5' is not a valid IPv4 address"),
    ("http://08.0.0.1/", "'08.0.0.1' is not a valid IPv4 address"),
    ("http://1.2.65536/", "'1.2.65536' is not a valid IPv4 address"),
    ("http://nowhere.example/", "host 'nowhere.example': it resolves to no address"),
]


@pytest.mark.parametrize(("url", "message"), REFUSED)
def test_unsafe_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeURLError, match=re.escape(message)):
        check(url)


def test_the_message_names_url_host_address_reason_and_remedy_without_the_password() -> None:
    with pytest.raises(UnsafeURLError) as info:
        check("http://bob:hunter2@internal.example:8080/x")
    assert str(info.value) == (
        "refusing 'http://bob:***@internal.example:8080/x': host 'internal.example' resolves "
        "to 10.0.0.7, a private address; to allow it, add its network (e.g. 10.0.0.7/32) to "
        "AMAZONIAX_ALLOWED_NETWORKS"
    )


ALLOWED_BY_DEPLOYMENT = [
    ("http://127.0.0.1:8080/", "127.0.0.0/8"),
    ("http://localhost:9000/", "127.0.0.0/8,::1/128"),
    ("http://0x7f.1/", "127.0.0.0/8"),
    ("http://10.1.2.3/", "10.1.0.0/16"),
    ("http://[::ffff:10.1.2.3]/", "10.1.0.0/16"),
    ("http://corp.example/", " 10.1.0.0/16 , "),
    ("http://[fd12:3456::1]/", "fd00::/8"),
    ("http://100.64.0.1/", "100.64.0.0/10"),
]


@pytest.mark.parametrize(("url", "networks"), ALLOWED_BY_DEPLOYMENT)
def test_allowed_networks_open_exactly_those_networks(url: str, networks: str) -> None:
    check(url, NetworkPolicy.from_env(networks))


@pytest.mark.parametrize(
    ("url", "networks", "message"),
    [
        ("http://10.2.0.1/", "10.1.0.0/16", "10.2.0.1, a private address"),
        ("http://localhost/", "127.0.0.0/8", "resolves to ::1, a loopback address"),
        ("http://mixed.example/", "192.168.0.0/16", "resolves to 10.0.0.1, a private address"),
        ("http://169.254.169.254/", "169.254.0.0/16", "a cloud metadata address"),
        ("http://[fd00:ec2::254]/", "fd00::/8", "a cloud metadata address"),
        ("http://metadata.google.internal/", "0.0.0.0/0", "a cloud metadata endpoint"),
    ],
)
def test_allowed_networks_do_not_open_anything_else(url: str, networks: str, message: str) -> None:
    with pytest.raises(UnsafeURLError, match=re.escape(message)):
        check(url, NetworkPolicy.from_env(networks))


def test_allow_metadata_lifts_only_the_metadata_veto() -> None:
    policy = NetworkPolicy.from_env("169.254.0.0/16", allow_metadata=True)
    check("http://169.254.169.254/latest/meta-data/", policy)
    check("http://metadata.google.internal/computeMetadata/v1/", policy)
    with pytest.raises(UnsafeURLError, match="169.254.169.254, a link-local address"):
        check("http://169.254.169.254/", NetworkPolicy(allow_metadata=True))


def test_other_schemes_can_be_allowed() -> None:
    policy = NetworkPolicy(allowed_schemes=frozenset({"ftp", "sftp"}))
    assert check("ftp://public.example/pub/", policy).calls == [("public.example", 21)]
    assert check("sftp://public.example/", policy).calls == [("public.example", 22)]
    with pytest.raises(UnsafeURLError, match="scheme 'https' is not allowed"):
        check("https://public.example/", policy)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        ("", ()),
        (" , ", ()),
        ("127.0.0.0/8", ("127.0.0.0/8",)),
        ("127.0.0.0/8,10.1.0.0/16", ("127.0.0.0/8", "10.1.0.0/16")),
        (" 10.1.2.3/16 , fd00::/8 ", ("10.1.0.0/16", "fd00::/8")),
        ("192.168.1.10", ("192.168.1.10/32",)),
    ],
)
def test_from_env_parses_a_cidr_list(value: str | None, expected: tuple[str, ...]) -> None:
    policy = NetworkPolicy.from_env(value)
    assert policy.allowed_networks == tuple(ipaddress.ip_network(n) for n in expected)
    assert policy.allowed_schemes == frozenset({"http", "https"})
    assert policy.allow_metadata is False


@pytest.mark.parametrize("bad", ["not-a-cidr", "10.0.0.0/33", "10.0.0.0/8;192.168.0.0/16"])
def test_from_env_names_a_malformed_entry(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"AMAZONIAX_ALLOWED_NETWORKS: {bad!r}")):
        NetworkPolicy.from_env(f"127.0.0.0/8,{bad}")


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("10.0.0.1", "refusing address 10.0.0.1, a private address"),
        ("::1", "refusing address ::1, a loopback address"),
        ("fe80::1%eth0", "refusing address fe80::1, a link-local address"),
        ("::ffff:192.168.0.1", "refusing address 192.168.0.1, a private address"),
        ("169.254.169.254", "refusing address 169.254.169.254, a cloud metadata address"),
        ("not-an-ip", "refusing address 'not-an-ip', which is not an IP address"),
    ],
)
def test_check_address_refuses(address: str, message: str) -> None:
    with pytest.raises(UnsafeURLError, match=f"^{re.escape(message)}"):
        NetworkPolicy().check_address(address)


@pytest.mark.parametrize("address", [PUBLIC_V4, PUBLIC_V6, "8.8.8.8", "[2606:4700::1111]"])
def test_check_address_allows_public(address: str) -> None:
    NetworkPolicy().check_address(address)


def test_redirect_targets_are_checked_absolute() -> None:
    policy, resolver = NetworkPolicy(), FakeResolver()
    policy.check_redirect("https://example.com/a/b", "../c?page=2", resolve=resolver)
    assert resolver.calls == [("example.com", 443)]
    for target in ["http://127.0.0.1/", "//169.254.169.254/latest", "http://localhost/"]:
        with pytest.raises(UnsafeURLError):
            policy.check_redirect("https://example.com/a", target, resolve=resolver)
    with pytest.raises(UnsafeURLError, match="scheme 'file'"):
        policy.check_redirect("https://example.com/a", "file:///etc/passwd", resolve=resolver)


def test_the_system_resolver_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []

    def fake_getaddrinfo(host: str, port: int, **kwargs: object) -> list[tuple[object, ...]]:
        calls.append((host, port))
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::5", port, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(UnsafeURLError, match="host 'dual.example' resolves to fd00::5"):
        NetworkPolicy().check_url("https://dual.example/")
    assert calls == [("dual.example", 443)]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), ConfigError),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), TransientError),
        (OSError("resolver exploded"), ConfigError),
        (UnicodeError("label too long"), ConfigError),
    ],
)
def test_resolver_errors_are_translated(error: Exception, expected: type[Exception]) -> None:
    def failing(host: str, port: int) -> list[str]:
        raise error

    with pytest.raises(expected) as info:
        NetworkPolicy().check_url("https://gone.example/", resolve=failing)
    assert type(info.value) is expected
    assert "gone.example" in str(info.value)
    assert info.value.__cause__ is error
