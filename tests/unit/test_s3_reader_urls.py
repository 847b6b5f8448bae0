"""Where the customer-bucket reader sends a request: path-style on a configured endpoint,
virtual-hosted on AWS when the bucket name can be a host name."""

import pytest

from amazoniax_dagster.clients.s3_reader import ReaderSettings, S3Reader
from amazoniax_dagster.core.errors import ConfigError


def reader(endpoint_url: str | None, region: str | None = "eu-west-1") -> S3Reader:
    return S3Reader(ReaderSettings(endpoint_url, "k", "s", region))


@pytest.mark.parametrize(
    ("endpoint", "bucket", "key", "url"),
    [
        (None, "my-bucket", "a b/c+d", "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/c%2Bd"),
        (None, "my-bucket", "", "https://my-bucket.s3.eu-west-1.amazonaws.com/"),
        # dots, capitals or underscores cannot be a host name (TLS): path-style
        (None, "my.bucket", "k", "https://s3.eu-west-1.amazonaws.com/my.bucket/k"),
        (None, "My_Bucket", "k", "https://s3.eu-west-1.amazonaws.com/My_Bucket/k"),
        ("http://127.0.0.1:8333/", "b", "x//y/", "http://127.0.0.1:8333/b/x//y/"),
        ("https://minio.example/s3", "b", "", "https://minio.example/s3/b"),
        ("http://h", "b", "ctl\x07/é~", "http://h/b/ctl%07/%C3%A9~"),
    ],
)
def test_urls(endpoint: str | None, bucket: str, key: str, url: str) -> None:
    client = reader(endpoint)
    assert client._url(bucket, key) == url
    client.close()


def test_no_region_is_us_east_1() -> None:
    assert reader(None, region=None)._url("b-1", "k") == "https://b-1.s3.us-east-1.amazonaws.com/k"


@pytest.mark.parametrize("endpoint", ["ftp://example.com", "example.com", "http://"])
def test_an_endpoint_that_is_not_an_http_url_is_a_config_error(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="endpoint_url"):
        reader(endpoint)


def test_settings_never_show_the_keys() -> None:
    assert "s3cr3t" not in repr(ReaderSettings("http://h", "AKIA", "s3cr3t", None))
    assert "AKIA" not in repr(ReaderSettings("http://h", "AKIA", "s3cr3t", None))
