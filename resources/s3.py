"""The output bucket as a resource: where new and updated files go, one folder per job."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    from amazoniax_dagster.clients.output_bucket import OutputBucket


class OutputBucketResource(dg.ConfigurableResource):
    bucket: str
    prefix: str = Field(default="raw", description="key prefix before <channel_id>/<job_id>/")
    endpoint_url: str | None = Field(default=None, description="for S3-compatible stores")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None

    _bucket: OutputBucket | None = PrivateAttr(default=None)

    def get_bucket(self, *, max_connections: int = 32) -> OutputBucket:
        if self._bucket is None:
            from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings

            self._bucket = OutputBucket(
                OutputSettings(
                    bucket=self.bucket,
                    prefix=self.prefix,
                    endpoint_url=self.endpoint_url or None,
                    access_key_id=self.access_key_id or None,
                    secret_access_key=self.secret_access_key or None,
                    region=self.region or None,
                ),
                max_connections=max_connections,
            )
        return self._bucket

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._bucket is not None:
            self._bucket.close()
            self._bucket = None
