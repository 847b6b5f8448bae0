"""The output bucket: one folder per job, ``<prefix>/<channel_id>/<job_id>/<relative path>``.

Requests go through :mod:`amazoniax_dagster.clients.s3http` (no boto3 in a job process): small files
are one PUT whose payload is signed with the file's SHA-256 (the server checks the bytes);
large files are multipart uploads whose parts the sync engine sends while it is still
downloading (:meth:`OutputBucket.start_upload`).
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from amazoniax_dagster.clients.s3http import ObjectStream, S3Http
from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, InfrastructureError

_MIB = 1024 * 1024
#: S3's limits for multipart uploads: parts of 5 MiB at least (but the last), 10,000 at most.
MIN_PART_SIZE = 5 * _MIB
MAX_PARTS = 10_000
DEFAULT_UPLOAD_PART_SIZE = 8 * _MIB


def part_size_for(size: int | None, preferred: int = DEFAULT_UPLOAD_PART_SIZE) -> int:
    """A part size that fits ``size`` bytes into S3's 10,000 parts (whole MiB)."""
    floor = max(preferred, MIN_PART_SIZE)
    if size is None:
        return max(floor, 16 * _MIB)  # unknown size: room for ~156 GiB
    needed = -(-size // MAX_PARTS)
    return max(floor, -(-needed // _MIB) * _MIB)


@dataclass(frozen=True)
class OutputSettings:
    bucket: str
    prefix: str = "raw"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None


class MultipartUpload:
    """One multipart upload into the output bucket. Parts may be sent from several threads;
    nothing is visible under the key until :meth:`complete`, and :meth:`abort` drops the
    parts (a duplicate found at the end of a download, or a failure)."""

    def __init__(self, http: S3Http, bucket: str, key: str, upload_id: str) -> None:
        self.key = key
        self._http = http
        self._bucket = bucket
        self._upload_id = upload_id
        self._etags: dict[int, str] = {}
        self._lock = threading.Lock()
        self._what = f"upload s3://{bucket}/{key}"

    def upload_part(self, number: int, data: bytes | bytearray | memoryview) -> None:
        """Part ``number`` (1-based); sending the same number again replaces it."""
        with _as_ours():
            etag = self._http.upload_part(
                self._bucket, self.key, self._upload_id, number, data, what=self._what
            )
        with self._lock:
            self._etags[number] = etag

    def complete(self) -> None:
        with self._lock:
            numbers = sorted(self._etags)
            etags = [self._etags[n] for n in numbers]
        if numbers != list(range(1, len(numbers) + 1)):
            raise InfrastructureError(f"cannot {self._what}: parts {numbers} are not contiguous")
        with _as_ours():
            self._http.complete_multipart_upload(
                self._bucket, self.key, self._upload_id, etags, what=self._what
            )

    def abort(self) -> None:
        with _as_ours():
            self._http.abort_multipart_upload(
                self._bucket, self.key, self._upload_id, what=f"abort {self._what}"
            )


class OutputBucket:
    def __init__(self, settings: OutputSettings, *, max_connections: int = 32) -> None:
        self.bucket = settings.bucket
        self.prefix = settings.prefix.strip("/")
        self._http = S3Http(
            endpoint_url=settings.endpoint_url,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            region=settings.region,
            max_connections=max_connections,
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

    def upload_bytes(self, key: str, data: bytes, *, sha256: str) -> None:
        """One PUT of a file held in memory; ``sha256`` (hex) signs it and is kept as metadata."""
        with _as_ours():
            self._http.put_object(
                self.bucket,
                key,
                data,
                sha256=sha256,
                metadata={"sha256": sha256},
                what=f"upload s3://{self.bucket}/{key}",
            )

    def start_upload(self, key: str, *, sha256: str | None = None) -> MultipartUpload:
        """A multipart upload to ``key``; ``sha256`` becomes metadata when known up front
        (a file streamed while it downloads is hashed only at the end, and carries none)."""
        with _as_ours():
            upload_id = self._http.create_multipart_upload(
                self.bucket,
                key,
                metadata={"sha256": sha256} if sha256 else None,
                what=f"upload s3://{self.bucket}/{key}",
            )
        return MultipartUpload(self._http, self.bucket, key, upload_id)

    def upload(self, stream: IO[bytes], key: str, *, sha256: str, size: int) -> None:
        """Upload ``size`` bytes from ``stream``: one PUT, or parts read one at a time."""
        part_size = part_size_for(size)
        if size <= part_size:
            self.upload_bytes(key, _read_exactly(stream, size, key), sha256=sha256)
            return
        upload = self.start_upload(key, sha256=sha256)
        try:
            left, number = size, 1
            while left > 0:
                data = _read_exactly(stream, min(part_size, left), key)
                upload.upload_part(number, data)
                left -= len(data)
                number += 1
            upload.complete()
        except BaseException:
            try:
                upload.abort()
            except AmazoniaxError:
                pass  # the upload's own failure is the one to report
            raise

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "text/plain") -> None:
        with _as_ours():
            self._http.put_object(
                self.bucket,
                key,
                data,
                content_type=content_type,
                what=f"write s3://{self.bucket}/{key}",
            )

    def read_head(self, key: str, max_bytes: int = 4 * _MIB) -> bytes:
        """The first ``max_bytes`` of a delivered file (validation compares shapes, not all)."""
        what = f"read s3://{self.bucket}/{key}"
        with _as_ours():
            stream = self._http.get_object(
                self.bucket, key, byte_range=(0, max_bytes - 1), what=what
            )
            try:
                return stream.read()
            finally:
                stream.close()

    def open(self, key: str) -> ObjectStream:
        """A delivered file's bytes as a stream (close it when done)."""
        with _as_ours():
            return self._http.get_object(self.bucket, key, what=f"read s3://{self.bucket}/{key}")

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` in the output bucket."""
        with _as_ours():
            return [
                item.key
                for item in self._http.list_objects(
                    self.bucket, prefix, what=f"list s3://{self.bucket}/{prefix}"
                )
            ]

    def job_prefixes(self, channel_id: str, job_id: str) -> tuple[str, str]:
        """Where a job writes files: its folder, and its quarantine folder."""
        quarantine = self.quarantine_key(channel_id, job_id, "")
        return self.job_folder(channel_id, job_id), quarantine

    def delete(self, keys: Iterable[str]) -> None:
        with _as_ours():
            self._http.delete_objects(self.bucket, list(keys), what=f"clean up s3://{self.bucket}")

    def ping(self) -> None:
        with _as_ours():
            self._http.head_bucket(self.bucket, what=f"reach the output bucket {self.bucket}")

    def close(self) -> None:
        self._http.close()


@contextmanager
def _as_ours() -> Iterator[None]:
    """A config error on *our* bucket is our infrastructure's fault, not the channel's."""
    try:
        yield
    except ConfigError as exc:
        raise InfrastructureError(str(exc)) from exc


def _read_exactly(stream: IO[bytes], size: int, key: str) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            raise InfrastructureError(f"upload of {key}: the stream ended {left} bytes early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
