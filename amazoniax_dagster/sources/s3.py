"""S3 channels: list ``bucket``/``remote_path`` with the channel's own credentials, read objects."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from amazoniax_dagster import s3util
from amazoniax_dagster.messages import S3SourceConfig
from amazoniax_dagster.netpolicy import NetworkPolicy
from amazoniax_dagster.paths import FilePattern, UnsafePathError, remote_prefix, safe_relative_path
from amazoniax_dagster.sources.base import Readable, RejectedFile, RemoteFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Source:
    def __init__(
        self, config: S3SourceConfig, *, policy: NetworkPolicy, max_connections: int = 32
    ) -> None:
        if config.endpoint_url:
            policy.check_url(config.endpoint_url)
        self.bucket = config.bucket
        self.prefix = remote_prefix(config.remote_path)
        self.pattern = FilePattern.parse(config.file_pattern)
        self.location = f"s3://{self.bucket}/{self.prefix}"
        self._client: S3Client = s3util.make_client(
            endpoint_url=config.endpoint_url,
            access_key_id=_reveal(config.access_key),
            secret_access_key=_reveal(config.secret_access_key),
            region=config.region,
            max_pool_connections=max_connections,
        )

    def list_files(self) -> Iterator[RemoteFile | RejectedFile]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        if not self.pattern.recursive:
            kwargs["Delimiter"] = "/"  # a top-level pattern needs no deep listing
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(**kwargs):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key.endswith("/"):
                        continue  # a "folder" marker object, not a file
                    relative = key[len(self.prefix) :]
                    try:
                        safe_relative_path(relative)
                    except UnsafePathError as exc:
                        yield RejectedFile(key, str(exc))
                        continue
                    if not self.pattern.matches(relative):
                        continue
                    yield RemoteFile(
                        key=key,
                        relative_path=relative,
                        size=obj.get("Size"),
                        etag=(obj.get("ETag") or "").strip('"') or None,
                        mtime=obj.get("LastModified"),
                    )
        except s3util.boto_errors() as exc:
            raise s3util.translate_error(exc, f"list {self.location}") from exc

    @contextmanager
    def open(self, remote: RemoteFile) -> Iterator[Readable]:
        what = f"download s3://{self.bucket}/{remote.key}"
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=remote.key)
        except s3util.boto_errors() as exc:
            raise s3util.translate_error(exc, what) from exc
        body = response["Body"]
        try:
            yield _TranslatingStream(body, what)
        finally:
            body.close()

    def close(self) -> None:
        self._client.close()


class _TranslatingStream:
    """A read-only stream whose read errors arrive already translated."""

    def __init__(self, body: Any, what: str) -> None:
        self._body = body
        self._what = what

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._body.read(size)
        except s3util.boto_errors() as exc:
            raise s3util.translate_error(exc, self._what) from exc
        return data


def _reveal(secret: Any) -> str | None:
    return secret.get_secret_value() if secret is not None else None
