"""Customer S3 buckets on botocore: list and read objects with the channel's own settings only.

The client comes from a botocore session that reads no ``AWS_*`` variable and no ``~/.aws``
file: a customer's store never gets the process's credentials, profile, session token,
endpoint or S3 settings. Keys are listed with ``EncodingType=url`` and unquoted here, so
control characters, ``//`` and a trailing ``/`` arrive byte for byte; GETs send the exact key.

botocore sends each request once: the job's ``RetryPolicy`` is the one retry layer, so the
channel's ``max_simple_retries`` bounds every request and the job's ``retries`` counts every
re-send. Errors leave translated into the error tree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from amazoniax_dagster.clients.s3 import boto_errors, translate_error
from amazoniax_dagster.core.errors import ConfigError, TransientError

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from botocore.session import Session
    from mypy_boto3_s3 import S3Client


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
    """The body of a GetObject, read in pieces; errors arrive translated."""

    def __init__(self, body: StreamingBody, what: str) -> None:
        self._body = body
        self._what = what

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._body.read(None if size < 0 else size)
        except boto_errors() as exc:
            self.close()
            raise translate_error(exc, self._what) from exc
        except OSError as exc:  # urllib3's raw socket errors while streaming
            self.close()
            raise TransientError(f"cannot {self._what}: {type(exc).__name__}") from exc

    def close(self) -> None:
        self._body.close()


class S3Reader:
    """A thread-safe reader of one customer bucket's endpoint; one per source."""

    def __init__(self, settings: ReaderSettings) -> None:
        try:
            self._client = _make_client(settings)
        except ValueError as exc:  # botocore: "Invalid endpoint: ..."
            raise ConfigError(f"cannot use S3 endpoint {settings.endpoint_url!r}: {exc}") from exc

    def list_objects(
        self, bucket: str, prefix: str, *, what: str, delimiter: str | None = None
    ) -> Iterator[ListedObject]:
        """Every object under ``prefix`` (only those right below it with ``delimiter``)."""
        params: dict[str, Any] = {
            "Bucket": bucket,
            "Prefix": prefix,
            "EncodingType": "url",
        }
        if delimiter:
            params["Delimiter"] = delimiter
        seen: set[str] = set()
        while True:
            try:
                page = self._client.list_objects_v2(**params)
            except boto_errors() as exc:
                raise translate_error(exc, what) from exc
            for item in page.get("Contents", ()):
                yield _listed(item, what)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            if token in seen:  # a server repeating itself would keep us here forever
                raise TransientError(f"cannot {what}: the listing repeats a continuation token")
            seen.add(token)
            params["ContinuationToken"] = token

    def get_object(self, bucket: str, key: str, *, what: str) -> ObjectStream:
        """The object's bytes as a stream (read in parts, never whole)."""
        try:
            reply = self._client.get_object(Bucket=bucket, Key=key)
        except boto_errors() as exc:
            raise translate_error(exc, what) from exc
        return ObjectStream(reply["Body"], what)

    def close(self) -> None:
        self._client.close()


def _make_client(settings: ReaderSettings) -> S3Client:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    # Passed as a mapping: botocore-stubs lag behind botocore's newer options.
    options: dict[str, Any] = dict(
        region_name=settings.region or "us-east-1",
        connect_timeout=settings.timeout_seconds,
        read_timeout=settings.timeout_seconds,
        max_pool_connections=settings.max_connections,
        # One send per request: the job's RetryPolicy retries, counts and logs.
        retries={"mode": "standard", "total_max_attempts": 1},
        s3={"addressing_style": "path"} if settings.endpoint_url else None,
        signature_version="s3v4" if settings.access_key_id else UNSIGNED,
        # AWS_ENDPOINT_URL(_S3) and endpoint_url in a config file are the process's, not ours.
        ignore_configured_endpoint_urls=True,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_appid="amazoniax",
    )
    session = boto3.session.Session(botocore_session=isolated_session())
    client: S3Client = session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        aws_session_token=None,
        # The CA bundle is the deployment's; None takes botocore's own (certifi).
        verify=os.environ.get("AWS_CA_BUNDLE") or None,
        config=Config(**options),
    )
    return client


def isolated_session() -> Session:
    """A botocore session whose settings are botocore's defaults: no environment, no files."""
    from botocore.configprovider import (
        BOTOCORE_DEFAUT_SESSION_VARIABLES,
        ConfigValueStore,
        ConstantProvider,
    )
    from botocore.session import Session

    session = Session()
    mapping = {
        name: ConstantProvider(spec[2]) for name, spec in BOTOCORE_DEFAUT_SESSION_VARIABLES.items()
    }
    mapping["config_file"] = ConstantProvider(os.devnull)
    mapping["credentials_file"] = ConstantProvider(os.devnull)
    session.register_component("config_store", ConfigValueStore(mapping=mapping))
    return session


def _listed(item: Any, what: str) -> ListedObject:
    key, size = item.get("Key"), item.get("Size")
    if key is None or size is None:
        raise TransientError(f"cannot {what}: the listing has an entry without key or size")
    etag = (item.get("ETag") or "").strip('"') or None
    return ListedObject(
        key=unquote_plus(key), size=int(size), etag=etag, last_modified=item.get("LastModified")
    )


__all__ = ["ListedObject", "ObjectStream", "ReaderSettings", "S3Reader", "isolated_session"]
