"""S3 channels: list ``bucket``/``remote_path`` with the channel's own credentials, read objects.

Listings go through :mod:`amazoniax_dagster.clients.s3_reader` (botocore); GETs through
:mod:`amazoniax_dagster.clients.s3_objects` (obstore) for every key obstore sends byte for byte,
else through the reader too. Both translate every error they raise; the job's ``RetryPolicy``
retries them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import Any

from amazoniax_dagster.clients.object_store import ChunkStream
from amazoniax_dagster.clients.s3_objects import ObstoreObjects, obstore_safe, obstore_usable
from amazoniax_dagster.clients.s3_reader import ObjectStream, ReaderSettings, S3Reader
from amazoniax_dagster.core.messages import S3SourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.paths import (
    FilePattern,
    UnsafePathError,
    remote_prefix,
    safe_relative_path,
)
from amazoniax_dagster.sources.base import Readable, RejectedFile, RemoteFile


class S3Source:
    def __init__(
        self,
        config: S3SourceConfig,
        *,
        policy: NetworkPolicy,
        max_connections: int = 32,
    ) -> None:
        if config.endpoint_url:
            policy.check_url(config.endpoint_url)
        self.bucket = config.bucket
        self.prefix = remote_prefix(config.remote_path)
        self.pattern = FilePattern.parse(config.file_pattern)
        self.location = f"s3://{self.bucket}/{self.prefix}"
        settings = ReaderSettings(
            endpoint_url=config.endpoint_url,
            access_key_id=_reveal(config.access_key),
            secret_access_key=_reveal(config.secret_access_key),
            region=config.region,
            max_connections=max_connections,
            timeout_seconds=config.timeout_seconds,
        )
        self._reader = S3Reader(settings)
        usable = obstore_usable(config.endpoint_url, os.environ)
        self._objects = ObstoreObjects(self.bucket, settings) if usable else None

    def list_files(self) -> Iterator[RemoteFile | RejectedFile]:
        # a top-level pattern needs no deep listing
        delimiter = None if self.pattern.recursive else "/"
        listing = self._reader.list_objects(
            self.bucket, self.prefix, delimiter=delimiter, what=f"list {self.location}"
        )
        for obj in listing:
            key = obj.key
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
                size=obj.size,
                etag=obj.etag,
                mtime=obj.last_modified,
            )

    @contextmanager
    def open(self, remote: RemoteFile) -> Iterator[Readable]:
        what = f"download s3://{self.bucket}/{remote.key}"
        stream: ChunkStream | BytesIO | ObjectStream
        if self._objects is not None and obstore_safe(remote.key):
            stream = self._objects.get_object(remote.key, what=what)
        else:
            stream = self._reader.get_object(self.bucket, remote.key, what=what)
        try:
            yield stream
        finally:
            stream.close()

    def close(self) -> None:
        self._reader.close()
        self._objects = None  # its connections close with the store


def _reveal(secret: Any) -> str | None:
    return secret.get_secret_value() if secret is not None else None
