"""The output bucket: one folder per job, ``<prefix>/<channel_id>/<job_id>/<relative path>``.

Requests go through obstore (Rust ``object_store``, the GIL released while it works), built by
:mod:`amazoniax_dagster.clients.object_store` with explicit settings and credentials. Small
files are one PUT; large files are multipart uploads whose parts the sync engine hands over
while it is still downloading (:meth:`OutputBucket.start_upload`), and which are completed or
dropped when the file's hash decides.

obstore retries a failed request itself (``make_store``: 3 times, within 60 s) and reports
nothing about a retry that then succeeded, so the job's ``retries`` count leaves those out.
They are not turned off to make them countable: a multipart upload is one ``put`` over the
part stream, so a part that failed once would restart the whole file.
"""

from __future__ import annotations

import io
import posixpath
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any, BinaryIO

from amazoniax_dagster.clients.object_store import (
    ChunkStream,
    StoreSettings,
    make_store,
    translated,
)
from amazoniax_dagster.core.errors import ConfigError, InfrastructureError

_MIB = 1024 * 1024
#: S3's limits for multipart uploads: parts of 5 MiB at least (but the last), 10,000 at most.
MIN_PART_SIZE = 5 * _MIB
MAX_PARTS = 10_000
DEFAULT_UPLOAD_PART_SIZE = 8 * _MIB
#: Parts of one streamed upload sent at once: each is a copy of the engine's part buffer, so
#: this bounds the memory an upload adds to the engine's buffers.
PARTS_IN_FLIGHT = 2
#: How long a health probe of the bucket may take (doctor, the read API, the alert sensor).
PING_TIMEOUT = 3.0


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
    #: SSE-KMS for every object written: a key id/ARN, "" for the bucket's KMS default key.
    kms_key_id: str | None = None


class _Aborted(Exception):
    """Ends the part stream of an upload that is dropped (obstore then aborts it)."""


class MultipartUpload:
    """One multipart upload into the output bucket, fed part by part from several threads.

    obstore sends the parts (``put`` over an iterator of parts, in order, at most
    :data:`PARTS_IN_FLIGHT` at once); a part is copied when obstore takes it, and
    :meth:`upload_part` returns then, so the caller may reuse its buffer. Nothing is visible
    under the key until :meth:`complete`; :meth:`abort` drops the parts.
    """

    def __init__(self, store: Any, key: str, what: str, *, part_size: int) -> None:
        self.key = key
        self._what = what
        self._cond = threading.Condition()
        self._parts: dict[int, bytes | bytearray | memoryview] = {}
        self._next = 1
        self._finished = False
        self._aborted = False
        self._error: BaseException | None = None
        self._sender = threading.Thread(
            target=self._send, args=(store, part_size), name=f"amazoniax-put-{key[-40:]}"
        )
        self._sender.start()

    def upload_part(self, number: int, data: bytes | bytearray | memoryview) -> None:
        """Part ``number`` (1-based, each once); returns when obstore has taken it."""
        with self._cond:
            self._raise_if_failed()
            self._parts[number] = data  # copied when obstore takes it, not before
            self._cond.notify_all()
            while number in self._parts and self._error is None and not self._aborted:
                self._cond.wait()
            self._raise_if_failed()

    def complete(self) -> None:
        with self._cond:
            self._finished = True
            self._cond.notify_all()
        self._sender.join()
        with self._cond:
            if self._parts:
                numbers = sorted(self._parts)
                raise InfrastructureError(
                    f"cannot {self._what}: parts {numbers} are missing a part before them"
                )
            self._raise_if_failed()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()
        self._sender.join()

    def _raise_if_failed(self) -> None:
        # obstore retried the requests already: the upload as a whole has failed for good.
        if self._error is not None:
            raise InfrastructureError(str(self._error)) from self._error

    def _stream(self) -> Iterator[bytes]:
        while True:
            with self._cond:
                while self._next not in self._parts and not self._aborted and not (self._finished):
                    self._cond.wait()
                if self._aborted:
                    raise _Aborted
                if self._next not in self._parts:  # finished: every part was handed over
                    return
                data = bytes(self._parts.pop(self._next))
                self._next += 1
                self._cond.notify_all()  # the caller may reuse its buffer now
            yield data

    def _send(self, store: Any, part_size: int) -> None:
        import obstore

        try:
            with _as_ours(), translated(self._what):
                obstore.put(
                    store,
                    self.key,
                    self._stream(),
                    use_multipart=True,
                    chunk_size=part_size,
                    max_concurrency=PARTS_IN_FLIGHT,
                )
        except _Aborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the threads that wait
            if not self._aborted:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()


class OutputBucket:
    def __init__(self, settings: OutputSettings, *, max_connections: int = 32) -> None:
        self.bucket = settings.bucket
        self.prefix = settings.prefix.strip("/")
        self._settings = StoreSettings(
            bucket=settings.bucket,
            endpoint_url=settings.endpoint_url,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            region=settings.region,
            kms_key_id=settings.kms_key_id,
        )
        self._max_connections = max_connections
        self._built: Any = None
        self._probe: tuple[float, Any] | None = None  # ping's timeout and store (no retries)
        self._building = threading.Lock()

    @property
    def _store(self) -> Any:
        """Built on first use: credentials are looked up then, not when a run starts."""
        with self._building:
            if self._built is None:
                with _as_ours():
                    self._built = make_store(self._settings, max_connections=self._max_connections)
            return self._built

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
        """One PUT of a file held in memory; ``sha256`` (hex) is kept as metadata."""
        import obstore

        with _as_ours(), translated(f"upload s3://{self.bucket}/{key}"):
            obstore.put(self._store, key, data, attributes={"sha256": sha256}, use_multipart=False)

    def start_upload(
        self, key: str, *, part_size: int = DEFAULT_UPLOAD_PART_SIZE
    ) -> MultipartUpload:
        """A multipart upload to ``key``, fed part by part (a file streamed while it downloads
        is hashed only at the end)."""
        return MultipartUpload(
            self._store, key, f"upload s3://{self.bucket}/{key}", part_size=part_size
        )

    def upload(self, stream: IO[bytes], key: str, *, sha256: str, size: int) -> None:
        """Upload ``size`` bytes from ``stream``: one PUT, or a multipart upload."""
        import obstore

        part_size = part_size_for(size)
        if size <= part_size:
            self.upload_bytes(key, _read_exactly(stream, size, key), sha256=sha256)
            return
        with _as_ours(), translated(f"upload s3://{self.bucket}/{key}"):
            obstore.put(
                self._store,
                key,
                _parts(stream, size, part_size, key),
                attributes={"sha256": sha256},
                use_multipart=True,
                chunk_size=part_size,
                max_concurrency=4,
            )

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "text/plain") -> None:
        import obstore

        with _as_ours(), translated(f"write s3://{self.bucket}/{key}"):
            obstore.put(
                self._store,
                key,
                data,
                attributes={"Content-Type": content_type},
                use_multipart=False,
            )

    def read_head(self, key: str, max_bytes: int = 4 * _MIB) -> bytes:
        """The first ``max_bytes`` of a delivered file (validation compares shapes, not all)."""
        import obstore

        with _as_ours(), translated(f"read s3://{self.bucket}/{key}"):
            result = obstore.get(self._store, key, options={"range": (0, max_bytes)})
            return bytes(result.bytes())

    def open(self, key: str) -> BinaryIO:
        """A delivered file's bytes as a stream, read as it is consumed (close it when done)."""
        import obstore

        what = f"read s3://{self.bucket}/{key}"
        with _as_ours(), translated(what):
            # One GET streamed as it is read (a reader of ranges would send one GET per MiB).
            chunks = obstore.get(self._store, key).stream(min_chunk_size=_MIB)
        return io.BufferedReader(ChunkStream(chunks, what, _ours), buffer_size=_MIB)

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under the folder ``prefix`` in the output bucket."""
        import obstore

        with _as_ours(), translated(f"list s3://{self.bucket}/{prefix}"):
            return [
                meta["path"]
                for chunk in obstore.list(self._store, prefix.rstrip("/") or None, chunk_size=1000)
                for meta in chunk
            ]

    def job_prefixes(self, channel_id: str, job_id: str) -> tuple[str, str]:
        """Where a job writes files: its folder, and its quarantine folder."""
        quarantine = self.quarantine_key(channel_id, job_id, "")
        return self.job_folder(channel_id, job_id), quarantine

    def delete(self, keys: Iterable[str]) -> None:
        import obstore

        paths = list(keys)
        if paths:
            with _as_ours(), translated(f"clean up s3://{self.bucket}"):
                obstore.delete(self._store, paths)

    def ping(self, timeout: float = PING_TIMEOUT) -> None:
        """One key listed: sent once and answered within ``timeout`` seconds, or an error."""
        import obstore

        with _as_ours():
            with self._building:
                if self._probe is None or self._probe[0] != timeout:
                    bound = timedelta(seconds=timeout)
                    self._probe = (
                        timeout,
                        make_store(self._settings, max_connections=1, probe=bound),
                    )
                store = self._probe[1]
            with translated(f"reach the output bucket {self.bucket}"):
                next(iter(obstore.list(store, chunk_size=1)), None)

    def close(self) -> None:
        """Nothing to release: obstore's connections close with the store."""


@contextmanager
def _as_ours() -> Iterator[None]:
    """A config error on *our* bucket is our infrastructure's fault, not the channel's."""
    try:
        yield
    except ConfigError as exc:
        raise InfrastructureError(str(exc)) from exc


@contextmanager
def _ours(what: str) -> Iterator[None]:
    """obstore's errors on our bucket, in the product's tree."""
    with _as_ours(), translated(what):
        yield


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


def _parts(stream: IO[bytes], size: int, part_size: int, key: str) -> Iterator[bytes]:
    left = size
    while left > 0:
        data = _read_exactly(stream, min(part_size, left), key)
        left -= len(data)
        yield data
