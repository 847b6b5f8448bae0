import pytest

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.sites import site_of, structure_id


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.amazon.com/product/123", "amazon.com"),
        ("https://www.amazon.co.uk/x", "amazon.co.uk"),
        ("https://AMAZON.com./", "amazon.com"),
        ("https://a.b.example.org:8443/x?y=1", "example.org"),
        ("https://team-a.github.io/data", "team-a.github.io"),  # a private suffix: own site
        ("http://127.0.0.1:8080/api", "127.0.0.1:8080"),
        ("http://127.0.0.1:8081/api", "127.0.0.1:8081"),
        ("http://localhost/", "localhost:80"),
        ("https://localhost/", "localhost:443"),
        ("http://[::1]:9000/", "[::1]:9000"),
    ],
)
def test_structure_id(url: str, site: str) -> None:
    assert structure_id(url) == site


@pytest.mark.parametrize("url", ["", "not a url", "ftp://example.com/x", "http://:80/"])
def test_urls_without_a_host_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        structure_id(url)


@pytest.mark.parametrize(
    ("source_type", "config", "site"),
    [
        ("html", {"url": "https://www.shop.example.com/list"}, "example.com"),
        ("api", {"url": "http://127.0.0.1:8080/v1"}, "127.0.0.1:8080"),
        ("ftp", {"host": "FTP.Example.com"}, "ftp:ftp.example.com"),
        ("s3", {"bucket": "b"}, None),
        ("html", {"url": "no host"}, None),
    ],
)
def test_site_of(source_type: str, config: dict[str, str], site: str | None) -> None:
    assert site_of(source_type, config) == site
