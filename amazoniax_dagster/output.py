"""The output bucket: one folder per job, ``<prefix>/<channel_id>/<job_id>/<relative path>``."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from amazoniax_dagster import s3util
from amazoniax_dagster.errors import ConfigError, InfrastructureError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

_MIB = 1024 * 1024


@dataclass(frozen=True)
class OutputSettings:
    bucket: str
    prefix: str = "raw"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None


class OutputBucket:
    def __init__(self, settings: OutputSettings, *, max_connections: int = 32) -> None:
        self.bucket = settings.bucket
        self.prefix = settings.prefix.strip("/")
        self._client: S3Client = s3util.make_client(
            endpoint_url=settings.endpoint_url,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            region=settings.region,
            max_pool_connections=max_connections,
        )
        from boto3.s3.transfer import TransferConfig

        # Multipart above 64 MiB in 16 MiB parts: memory stays flat for any file size.
        self._transfer = TransferConfig(
            multipart_threshold=64 * _MIB, multipart_chunksize=16 * _MIB, max_concurrency=4
        )

    def job_folder(self, channel_id: str, job_id: str) -> str:
        """The job's folder key, ending in ``/``."""
        return posixpath.join(*(p for p in (self.prefix, channel_id, job_id) if p)) + "/"

    def job_uri(self, channel_id: str, job_id: str) -> str:
        return f"s3://{self.bucket}/{self.job_folder(channel_id, job_id)}"

    def job_log_key(self, channel_id: str, job_id: str) -> str:
        """Beside the job folder, not in it: parsers read the folder and must not see logs."""
        return (
            posixpath.join(*(p for p in (self.prefix, channel_id, "_logs") if p)) + f"/{job_id}.log"
        )

    def quarantine_key(self, channel_id: str, job_id: str, relative_path: str) -> str:
        """Invalid files of a quarantining channel: kept for people, not announced to parsers."""
        parts = (self.prefix, channel_id, "_quarantine", job_id)
        return posixpath.join(*(p for p in parts if p)) + "/" + relative_path

    def key_for(self, channel_id: str, job_id: str, relative_path: str) -> str:
        return self.job_folder(channel_id, job_id) + relative_path

    def upload(self, stream: BinaryIO, key: str, *, sha256: str, size: int) -> None:
        if size < self._transfer.multipart_threshold:
            # One PUT: boto3's upload_fileobj builds a TransferManager (and thread pools) per
            # call, which dominated small-file copies.
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=stream,
                    ContentLength=size,
                    Metadata={"sha256": sha256},
                )
            except s3util.boto_errors() as exc:
                raise self._translate(exc, f"upload s3://{self.bucket}/{key}") from exc
            return
        try:
            self._client.upload_fileobj(
                stream,
                self.bucket,
                key,
                ExtraArgs={"Metadata": {"sha256": sha256}},
                Config=self._transfer,
            )
        except s3util.boto_errors() as exc:
            raise self._translate(exc, f"upload s3://{self.bucket}/{key}") from exc
        except Exception as exc:
            # s3transfer wraps client errors in its own S3UploadFailedError.
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, s3util.boto_errors()):
                raise self._translate(cause, f"upload s3://{self.bucket}/{key}") from exc
            raise

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "text/plain") -> None:
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        except s3util.boto_errors() as exc:
            raise self._translate(exc, f"write s3://{self.bucket}/{key}") from exc

    def read_head(self, key: str, max_bytes: int = 4 * _MIB) -> bytes:
        """The first ``max_bytes`` of a delivered file (validation compares shapes, not all)."""
        try:
            body = self._client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes - 1}"
            )["Body"]
            with body:
                return body.read()
        except s3util.boto_errors() as exc:
            raise self._translate(exc, f"read s3://{self.bucket}/{key}") from exc

    def delete(self, keys: Iterable[str]) -> None:
        batch: list[ObjectIdentifierTypeDef] = [{"Key": k} for k in keys]
        for i in range(0, len(batch), 1000):
            try:
                self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch[i : i + 1000], "Quiet": True}
                )
            except s3util.boto_errors() as exc:
                raise self._translate(exc, f"clean up s3://{self.bucket}") from exc

    def ping(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except s3util.boto_errors() as exc:
            raise self._translate(exc, f"reach the output bucket {self.bucket}") from exc

    def close(self) -> None:
        self._client.close()

    @staticmethod
    def _translate(exc: Exception, what: str) -> Exception:
        # A config error on *our* bucket is our infrastructure's fault, not the channel's.
        err = s3util.translate_error(exc, what)
        if isinstance(err, ConfigError):
            return InfrastructureError(str(err))
        return err
