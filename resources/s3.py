"""The output bucket as a resource: where new and updated files go, one folder per job."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    from amazoniax_dagster.clients.output_bucket import OutputBucket


class OutputBucketResource(dg.ConfigurableResource):
    """Unset optional fields (None) are read from ``AMAZONIAX_S3_*`` when a run uses the
    bucket; without keys, the AWS credential chain (IRSA, EKS Pod Identity, instance role)."""

    bucket: str
    prefix: str = Field(default="raw", description="key prefix before <channel_id>/<job_id>/")
    endpoint_url: str | None = Field(
        default=None, description="for S3-compatible stores; default: $AMAZONIAX_S3_ENDPOINT_URL"
    )
    access_key_id: str | None = Field(
        default=None, description="default: $AMAZONIAX_S3_ACCESS_KEY_ID, else the AWS chain"
    )
    secret_access_key: str | None = Field(
        default=None, description="default: $AMAZONIAX_S3_SECRET_ACCESS_KEY"
    )
    region: str | None = Field(default=None, description="default: $AMAZONIAX_S3_REGION")
    kms_key_id: str | None = Field(
        default=None,
        description="SSE-KMS for every object written: a key id or ARN; default: "
        "$AMAZONIAX_S3_KMS_KEY_ID, else no SSE-KMS",
    )

    _bucket: OutputBucket | None = PrivateAttr(default=None)

    def get_bucket(self, *, max_connections: int = 32) -> OutputBucket:
        if self._bucket is None:
            from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings

            self._bucket = OutputBucket(
                OutputSettings(
                    bucket=self.bucket,
                    prefix=self.prefix,
                    endpoint_url=_or_env(self.endpoint_url, "AMAZONIAX_S3_ENDPOINT_URL"),
                    access_key_id=_or_env(self.access_key_id, "AMAZONIAX_S3_ACCESS_KEY_ID"),
                    secret_access_key=_or_env(
                        self.secret_access_key, "AMAZONIAX_S3_SECRET_ACCESS_KEY"
                    ),
                    region=_or_env(self.region, "AMAZONIAX_S3_REGION"),
                    kms_key_id=_or_env(self.kms_key_id, "AMAZONIAX_S3_KMS_KEY_ID"),
                ),
                max_connections=max_connections,
            )
        return self._bucket

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._bucket is not None:
            self._bucket.close()
            self._bucket = None


def _or_env(value: str | None, name: str) -> str | None:
    """The configured value, else the environment's (read when a run needs it); "" is unset."""
    found = value if value is not None else os.environ.get(name)
    return found or None
