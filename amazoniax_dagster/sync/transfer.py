"""One file's bytes, read once: hashed while they stream, uploaded while they download.

Two shapes, chosen by the listed size:

- **small** (up to one part, 6 MiB by default): read into memory, hashed, and (when new)
  sent as one PUT whose payload signature is that hash. No spool file, no second pass.
- **large** (more than one part, or size unknown): each part goes to a multipart upload of the
  job's key as soon as it is read, at most ``part_threads`` parts in flight, while reading goes
  on; the file is also spooled to disk when it must be validated (validators seek). Only when
  the last byte is hashed does the engine know whether the file is new: it then completes the
  upload, or aborts it (duplicate, or quarantined: the spool goes to the quarantine key).

Memory stays flat for any file size and any number of parallel files, in two bounds per
engine: small files are held against a :class:`MemoryBudget` (taken before reading, given
back after the upload), and large files are read into a few reusable :class:`PartBuffers`
(a part buffer goes back to the pool when its upload is done). A reader that finds no room
waits (back-pressure) rather than allocating more. Reusing the part buffers, instead of a
new ``bytes`` per part, also keeps the allocator from fragmenting.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from amazoniax_dagster.clients.output_bucket import MultipartUpload, OutputBucket, part_size_for
from amazoniax_dagster.core.errors import AmazoniaxError, TransientError
from amazoniax_dagster.core.retry import RetryPolicy
from amazoniax_dagster.sources.base import Readable, RemoteFile, Source

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
MIB = 1024 * 1024
#: 6 MiB parts, five buffers (one being read, four being sent): more parts in flight hide
#: more of a remote store's latency.
DEFAULT_PART_SIZE = 6 * MIB
#: Part buffers per engine: one being read and the rest being sent.
DEFAULT_PART_BUFFERS = 5
#: Bytes of small files (up to one part each) held in memory at once.
DEFAULT_MEMORY_BUDGET = 32 * MIB


class Stopped(Exception):
    """The job failed elsewhere: this transfer stops instead of running to its end."""


class MemoryBudget:
    """Bytes of file data held in memory at once, shared by all threads of one engine."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._used = 0
        self._cond = threading.Condition()

    def take(self, amount: int) -> int:
        """Wait until ``amount`` bytes fit (at most the whole budget); returns what was taken."""
        amount = min(max(0, amount), self.limit)
        with self._cond:
            while self._used + amount > self.limit:
                self._cond.wait()
            self._used += amount
        return amount

    def give(self, amount: int) -> None:
        with self._cond:
            self._used -= amount
            self._cond.notify_all()

    @property
    def used(self) -> int:
        with self._cond:
            return self._used


class PartBuffers:
    """Up to ``count`` reusable part buffers, made on first use and dropped on ``close``."""

    def __init__(self, count: int) -> None:
        self.count = max(2, count)
        self._free: list[bytearray] = []
        self._made = 0
        self._cond = threading.Condition()

    def take(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes; waits while all of them are in use."""
        with self._cond:
            while not self._free and self._made >= self.count:
                self._cond.wait()
            if self._free:
                buffer = self._free.pop()
            else:
                self._made += 1
                buffer = bytearray()
        if len(buffer) < size:  # first use, or a file whose parts must be larger
            buffer = bytearray(size)
        return buffer

    def give(self, buffer: bytearray) -> None:
        with self._cond:
            self._free.append(buffer)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._free.clear()


class StreamingUpload:
    """The multipart upload of one large file, fed part by part while the file downloads.

    Parts go to the engine's part threads; each gives its buffer back when sent. After
    :meth:`abort` parts not yet started are skipped, so an abort never waits for a queue of
    uploads that no longer matter.
    """

    def __init__(
        self,
        upload: MultipartUpload,
        pool: ThreadPoolExecutor,
        buffers: PartBuffers,
        retry: RetryPolicy,
        name: str,
    ) -> None:
        self.upload = upload
        self._pool = pool
        self._buffers = buffers
        self._retry = retry
        self._name = name
        self._parts: list[Future[None]] = []
        self._stopped = threading.Event()
        self.completed = False

    def send(self, buffer: bytearray, length: int) -> None:
        """Queue the next part, the first ``length`` bytes of ``buffer`` (given back to the
        pool once sent)."""
        number = len(self._parts) + 1
        data = memoryview(buffer)[:length]

        def run() -> None:
            try:
                if not self._stopped.is_set():
                    self._retry.call(
                        lambda: self.upload.upload_part(number, data),
                        what=f"upload part {number} of {self._name}",
                    )
            finally:
                data.release()
                self._buffers.give(buffer)

        self._parts.append(self._pool.submit(run))

    def raise_failed(self) -> None:
        """Stop reading as soon as a part failed for good (its retries are spent)."""
        for part in self._parts:
            if part.done() and (exc := part.exception()) is not None:
                raise exc

    def wait(self) -> None:
        """Block until every part is sent; the first part that failed is raised."""
        failures = [exc for part in self._parts if (exc := part.exception()) is not None]
        if failures:
            raise failures[0]

    def complete(self, what: str) -> None:
        self.wait()
        self._retry.call(self.upload.complete, what=what)
        self.completed = True

    def abort(self) -> None:
        """Drop the upload once no part is in flight (a part sent after the abort could
        linger); the caller's own error, if any, is the one that matters."""
        self._stopped.set()
        for part in self._parts:
            part.exception()  # waits
        try:
            self.upload.abort()
        except AmazoniaxError as exc:
            log.warning("could not abort the upload of %s: %s", self.upload.key, exc)


class Fetched:
    """A file read through SHA-256: its bytes in memory (``data``), or a started multipart
    upload (``upload``, plus a ``spool`` when validation needs the bytes again). ``close``
    gives the memory back and aborts an upload that was not completed."""

    def __init__(self, budget: MemoryBudget, digest: str, size: int) -> None:
        self.digest = digest
        self.size = size
        self.data: bytes | None = None
        self.spool: IO[bytes] | None = None
        self.upload: StreamingUpload | None = None
        self._budget = budget
        self._held = 0

    def hold(self, data: bytes, held: int) -> None:
        self.data, self._held = data, held

    def stream(self) -> IO[bytes]:
        """The bytes again, for validation (seekable)."""
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.spool is None:
            raise RuntimeError("a streamed file without a spool cannot be read again")
        self.spool.seek(0)
        return self.spool

    def close(self) -> None:
        if self._held:
            self._budget.give(self._held)
            self._held = 0
        self.data = None
        if self.upload is not None and not self.upload.completed:
            self.upload.abort()
        self.upload = None
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    def __enter__(self) -> Fetched:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transfers:
    """Reads files from ``source`` for one engine run; large files upload while they read."""

    def __init__(
        self,
        source: Source,
        output: OutputBucket,
        retry: RetryPolicy,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        part_buffers: int = DEFAULT_PART_BUFFERS,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        spool_dir: Path | None = None,
        keep_copy: bool = True,
    ) -> None:
        self.source = source
        self.output = output
        self.retry = retry
        self.part_size = part_size
        self.budget = MemoryBudget(max(memory_budget, part_size))
        self.buffers = PartBuffers(part_buffers)
        self.spool_dir = spool_dir
        self.keep_copy = keep_copy  # spool large files: a validator reads them again
        # One thread per buffer that can be in flight (one is always being read into).
        self._part_threads = self.buffers.count - 1
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._stopped = threading.Event()

    def fetch(self, remote: RemoteFile, key: str) -> Fetched:
        """Read ``remote`` once; a large file's parts start uploading to ``key`` meanwhile.
        A short or long read (the file changed, the connection was cut) is transient."""
        if remote.size is not None and remote.size <= self.part_size:
            return self._fetch_small(remote)
        return self._fetch_large(remote, key)

    def stop(self) -> None:
        """Make transfers under way end early (they raise :class:`Stopped`)."""
        self._stopped.set()

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.buffers.close()

    # --- small files: in memory

    def _fetch_small(self, remote: RemoteFile) -> Fetched:
        expected = remote.size or 0
        held = self.budget.take(expected)
        try:
            chunks: list[bytes] = []
            size = 0
            with self.source.open(remote) as stream:
                # One byte more than listed tells a file that grew from one that is complete.
                while size <= expected and (chunk := stream.read(min(CHUNK, expected + 1 - size))):
                    chunks.append(chunk)
                    size += len(chunk)
                    if self._stopped.is_set():
                        raise Stopped(remote.relative_path)
            _check_size(remote, size)
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            fetched = Fetched(self.budget, hashlib.sha256(data).hexdigest(), size)
        except BaseException:
            self.budget.give(held)
            raise
        fetched.hold(data, held)
        return fetched

    # --- large files: parts uploaded while reading

    def _fetch_large(self, remote: RemoteFile, key: str) -> Fetched:
        part_size = part_size_for(remote.size, self.part_size)
        hasher = hashlib.sha256()
        spool = (
            tempfile.TemporaryFile(dir=str(self.spool_dir) if self.spool_dir else None)
            if self.keep_copy
            else None
        )
        upload: StreamingUpload | None = None
        size = 0
        try:
            with self.source.open(remote) as stream:
                while True:
                    buffer = self.buffers.take(part_size)
                    try:
                        length = _read_into(stream, buffer, part_size, hasher, spool, self._stopped)
                    except BaseException:
                        self.buffers.give(buffer)
                        raise
                    size += length
                    if upload is None and length < part_size:
                        # The whole file fit in one part (its size was not listed): keep it
                        # in memory like a small file.
                        try:
                            _check_size(remote, size)
                            held = self.budget.take(length)
                            data = bytes(memoryview(buffer)[:length])
                        finally:
                            self.buffers.give(buffer)
                        fetched = Fetched(self.budget, hasher.hexdigest(), size)
                        fetched.hold(data, held)
                        if spool is not None:
                            spool.close()
                        return fetched
                    if length == 0:
                        self.buffers.give(buffer)
                        break
                    if upload is None:
                        try:
                            started = self.output.start_upload(key, part_size=part_size)
                        except BaseException:
                            self.buffers.give(buffer)
                            raise
                        upload = StreamingUpload(
                            started,
                            self._parts_pool(),
                            self.buffers,
                            self.retry,
                            remote.relative_path,
                        )
                    upload.send(buffer, length)
                    upload.raise_failed()
                    if length < part_size:  # only the last part is short
                        break
            _check_size(remote, size)
        except BaseException:
            if upload is not None:
                upload.abort()
            if spool is not None:
                spool.close()
            raise
        fetched = Fetched(self.budget, hasher.hexdigest(), size)
        fetched.spool, fetched.upload = spool, upload
        return fetched

    def _parts_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._part_threads, thread_name_prefix="part-upload"
                )
            return self._pool


def _read_into(
    stream: Readable,
    buffer: bytearray,
    size: int,
    hasher: Any,
    spool: IO[bytes] | None,
    stopped: threading.Event,
) -> int:
    """Fill ``buffer`` with up to ``size`` bytes (fewer only at the end of the file), hashing
    and spooling them on the way; returns how many."""
    view = memoryview(buffer)
    got = 0
    try:
        while got < size and (chunk := stream.read(min(CHUNK, size - got))):
            view[got : got + len(chunk)] = chunk
            got += len(chunk)
            hasher.update(chunk)
            if spool is not None:
                spool.write(chunk)
            if stopped.is_set():
                raise Stopped("the job failed elsewhere")
    finally:
        view.release()
    return got


def _check_size(remote: RemoteFile, size: int) -> None:
    if remote.size is not None and size != remote.size:
        raise TransientError(
            f"{remote.relative_path}: read {size} bytes but the listing said "
            f"{remote.size} (connection cut or file changed during the job)"
        )
