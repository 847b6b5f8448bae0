"""The sync engine: list → (skip unchanged | download + hash) → classify → upload new/updated.

One engine serves every file source. Per file it reads the bytes once through SHA-256 (small
files into memory, large ones streamed into a multipart upload as they arrive: see
``transfer``; memory stays flat), classifies against the channel's history, and keeps only new
and updated files in the job's folder. Nothing is written to the DB here: the caller records
the result in one transaction after every upload succeeded, so a failed job leaves history
untouched (and this attempt's uploads deleted) and can simply be run again.

Classification (per channel):
- **duplicate**: the channel has already delivered exactly these bytes (same content hash),
  under this path or another;
- **updated**: this path was delivered before with other bytes;
- **new**: neither;
- **unchanged**: the listing shows the same (key, size, etag/mtime) as when the file was last
  fetched, so it is a duplicate known without downloading it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from amazoniax_dagster.clients.output_bucket import OutputBucket
from amazoniax_dagster.core.retry import RetryPolicy
from amazoniax_dagster.db.rows import ChannelHistory, DeliveredFile, SourceIdentity
from amazoniax_dagster.sources.base import RejectedFile, RemoteFile, Source
from amazoniax_dagster.sync.transfer import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_PART_BUFFERS,
    DEFAULT_PART_SIZE,
    Fetched,
    Transfers,
)
from amazoniax_dagster.sync.validation.rules import FileCheck, Verdict
from amazoniax_dagster.sync.wording import count

log = logging.getLogger(__name__)


class Classification(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class FileOutcome:
    remote: RemoteFile
    classification: Classification
    content_hash: str
    size: int
    s3_key: str | None  # set when uploaded (to the job folder, or to quarantine)
    downloaded: bool
    check: FileCheck | None = None  # set for new/updated files when validation is on
    quarantined: bool = False

    @property
    def invalid(self) -> bool:
        return self.check is not None and self.check.verdict is Verdict.INVALID


#: Checks one file's format: (relative path, seekable stream) -> verdict.
Validator = Callable[[str, IO[bytes]], FileCheck]


@dataclass
class SyncResult:
    channel_id: str
    job_id: str
    output_uri: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    duration_seconds: float = 0.0
    #: how many paths the channel had delivered before this job (0 for a new channel)
    history_files: int = 0
    #: what happens to invalid files: "flag" (uploaded, reported) or "quarantine"
    invalid_files_policy: str = "flag"
    #: transient failures retried during the job (listing, downloads, uploads)
    retries: int = 0
    #: what the caller adds to the job's metadata (e.g. which site fetcher ran)
    extra: dict[str, Any] = field(default_factory=dict)

    def count(self, classification: Classification) -> int:
        return sum(1 for o in self.outcomes if o.classification is classification)

    @property
    def uploaded(self) -> list[FileOutcome]:
        """Files in the job folder: what parsers are told about (quarantine excluded)."""
        return [o for o in self.outcomes if o.s3_key is not None and not o.quarantined]

    @property
    def checks(self) -> list[FileCheck]:
        return [o.check for o in self.outcomes if o.check is not None]

    @property
    def bytes_downloaded(self) -> int:
        return sum(o.size for o in self.outcomes if o.downloaded)

    @property
    def bytes_uploaded(self) -> int:
        return sum(o.size for o in self.outcomes if o.s3_key is not None)

    @property
    def downloads(self) -> int:
        return sum(1 for o in self.outcomes if o.downloaded)

    def delivered(self) -> list[DeliveredFile]:
        return [
            DeliveredFile(
                o.remote.relative_path,
                o.s3_key,
                o.content_hash,
                o.size,
                o.classification,
                validation=o.check.verdict if o.check else None,
                quarantined=o.quarantined,
            )
            for o in self.outcomes
            if o.s3_key is not None
        ]

    def identities(self) -> list[SourceIdentity]:
        """Listing identities of the files downloaded now, for the next skip (an unchanged
        file's stored identity is already right: rewriting it is wasted work)."""
        return [
            SourceIdentity(
                o.remote.key,
                o.remote.relative_path,
                o.remote.size,
                o.remote.etag,
                o.remote.mtime,
                o.content_hash,
            )
            for o in self.outcomes
            if o.downloaded
        ]

    def summary(self) -> dict[str, int | float]:
        return {
            "listed": len(self.outcomes) + len(self.rejected),
            "new": self.count(Classification.NEW),
            "updated": self.count(Classification.UPDATED),
            "duplicate": self.count(Classification.DUPLICATE),
            "unchanged": self.count(Classification.UNCHANGED),
            "rejected": len(self.rejected),
            "downloads": self.downloads,
            "bytes_downloaded": self.bytes_downloaded,
            "bytes_uploaded": self.bytes_uploaded,
            "files_uploaded": len(self.uploaded),
            "invalid": sum(1 for o in self.outcomes if o.invalid),
            "quarantined": sum(1 for o in self.outcomes if o.quarantined),
            "retries": self.retries,
            "duration_seconds": round(self.duration_seconds, 3),
        }


def classify(relative_path: str, content_hash: str, history: ChannelHistory) -> Classification:
    if content_hash in history.delivered_hashes:
        return Classification.DUPLICATE
    if relative_path in history.latest_hash_by_path:
        return Classification.UPDATED
    return Classification.NEW


def listing_unchanged(remote: RemoteFile, known: SourceIdentity | None) -> bool:
    """Whether the listing proves the file is byte-for-byte what was fetched last time."""
    if known is None or remote.size is None or remote.size != known.size:
        return False
    if remote.etag is not None and known.etag is not None:
        return remote.etag == known.etag
    if remote.mtime is not None and known.mtime is not None:
        return remote.mtime == known.mtime
    return False


class SyncEngine:
    def __init__(
        self,
        source: Source,
        output: OutputBucket,
        *,
        retry: RetryPolicy,
        max_workers: int = 16,
        trust_listing: bool = True,
        spool_dir: Path | None = None,
        discard_on_failure: bool = True,
        validate: Validator | None = None,
        quarantine_invalid: bool = False,
        part_size: int = DEFAULT_PART_SIZE,
        part_buffers: int = DEFAULT_PART_BUFFERS,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        on_first_upload: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.output = output
        self.retry = retry
        self.max_workers = max_workers
        self.trust_listing = trust_listing
        self.spool_dir = spool_dir
        # False when re-running a job whose files were already announced: keep them.
        self.discard_on_failure = discard_on_failure
        self.validate = validate
        # Invalid files go under a separate prefix instead of the job folder.
        self.quarantine_invalid = quarantine_invalid
        self.part_size = part_size
        self.part_buffers = part_buffers
        self.memory_budget = memory_budget
        # Called once, from a transfer thread, when the first file is kept (it will usually be
        # announced): the job warms its Kafka producer then, not after the transfers.
        self.on_first_upload = on_first_upload
        self._uploaded: list[str] = []
        self._uploaded_lock = threading.Lock()

    def run(
        self,
        *,
        channel_id: str,
        job_id: str,
        history: ChannelHistory | Future[ChannelHistory],
    ) -> SyncResult:
        """Sync what the source lists against ``history``, which may still be loading (a
        ``Future``): it is first needed after the listing, so the two can overlap."""
        started = time.monotonic()
        result = SyncResult(channel_id, job_id, self.output.job_uri(channel_id, job_id))
        result.invalid_files_policy = "quarantine" if self.quarantine_invalid else "flag"
        listing = self.retry.call(
            lambda: list(self.source.list_files()), what=f"list {self.source.location}"
        )
        if isinstance(history, Future):
            history = history.result()
        result.history_files = len(history.latest_hash_by_path)
        files = [f for f in listing if isinstance(f, RemoteFile)]
        result.rejected = [f for f in listing if isinstance(f, RejectedFile)]
        for rejected in result.rejected:
            log.warning("refused remote file %r: %s", rejected.key, rejected.reason)
        log.info("listed %s in %s", count(len(files), "file"), self.source.location)
        transfers = Transfers(
            self.source,
            self.output,
            self.retry,
            part_size=self.part_size,
            part_buffers=self.part_buffers,
            memory_budget=self.memory_budget,
            spool_dir=self.spool_dir,
            keep_copy=self.validate is not None,
        )

        # Unchanged files are decided here, from the listing alone: no thread, no request.
        skipped = [self._unchanged(remote, history) for remote in files]
        fetch = [remote for remote, outcome in zip(files, skipped, strict=True) if outcome is None]

        def process(remote: RemoteFile) -> FileOutcome:
            return self._process(remote, channel_id, job_id, history, transfers)

        try:
            fetched = iter(_run_all(process, fetch, self.max_workers, on_failure=transfers.stop))
            result.outcomes = [outcome or next(fetched) for outcome in skipped]
        except BaseException:
            if self.discard_on_failure:
                self._discard_uploads()
            raise
        finally:
            transfers.close()
        result.duration_seconds = time.monotonic() - started
        return result

    def _process(
        self,
        remote: RemoteFile,
        channel_id: str,
        job_id: str,
        history: ChannelHistory,
        transfers: Transfers,
    ) -> FileOutcome:
        key = self.output.key_for(channel_id, job_id, remote.relative_path)
        fetched = self.retry.call(
            lambda: transfers.fetch(remote, key), what=f"download {remote.relative_path}"
        )
        with fetched:
            digest, size = fetched.digest, fetched.size
            classification = classify(remote.relative_path, digest, history)
            if classification not in (Classification.NEW, Classification.UPDATED):
                return FileOutcome(remote, classification, digest, size, None, True)
            check = self.validate(remote.relative_path, fetched.stream()) if self.validate else None
            quarantined = (
                self.quarantine_invalid and check is not None and check.verdict is Verdict.INVALID
            )
            if quarantined:
                key = self.output.quarantine_key(channel_id, job_id, remote.relative_path)
            self._keep(fetched, key, remote.relative_path, quarantined)
            return FileOutcome(remote, classification, digest, size, key, True, check, quarantined)

    def _unchanged(self, remote: RemoteFile, history: ChannelHistory) -> FileOutcome | None:
        """The outcome of a file the listing proves unchanged, else None (fetch it)."""
        known = history.identities.get(remote.key)
        if self.trust_listing and known is not None and listing_unchanged(remote, known):
            return FileOutcome(
                remote, Classification.UNCHANGED, known.content_hash, remote.size or 0, None, False
            )
        return None

    def _keep(self, fetched: Fetched, key: str, relative_path: str, quarantined: bool) -> None:
        """Put a new or updated file under ``key``: one PUT from memory, completing the upload
        that streamed while it downloaded, or (quarantined) re-sending the spool elsewhere."""
        what = f"upload {relative_path}"
        # Noted before the upload: a PUT that landed although its reply was lost is still
        # removed after a failure (deleting a key that does not exist is harmless).
        with self._uploaded_lock:
            first = not self._uploaded
            self._uploaded.append(key)
        if first and self.on_first_upload is not None:
            self.on_first_upload()
        if fetched.data is not None:
            data = fetched.data
            self.retry.call(
                lambda: self.output.upload_bytes(key, data, sha256=fetched.digest), what=what
            )
        elif fetched.upload is not None and not quarantined:
            fetched.upload.complete(what)
        else:
            if fetched.upload is not None:
                fetched.upload.abort()
                fetched.upload = None
            spool = fetched.stream()

            def upload() -> None:
                spool.seek(0)
                self.output.upload(spool, key, sha256=fetched.digest, size=fetched.size)

            self.retry.call(upload, what=what)

    def _discard_uploads(self) -> None:
        """After a failure, remove what this attempt uploaded: no half-done folder stays."""
        with self._uploaded_lock:
            keys, self._uploaded = self._uploaded, []
        if not keys:
            return
        try:
            self.output.delete(keys)
            log.info("removed %s uploaded before the failure", count(len(keys), "file"))
        except Exception as exc:  # the original failure matters more than the clean-up
            log.warning(
                "could not remove %s uploaded before the failure: %s", count(len(keys), "file"), exc
            )


def _run_all(
    fn: Callable[[RemoteFile], FileOutcome],
    files: list[RemoteFile],
    max_workers: int,
    *,
    on_failure: Callable[[], None],
) -> list[FileOutcome]:
    """Run ``fn`` over ``files`` in parallel; the first error cancels the rest (``on_failure``
    stops the running ones early) and is raised."""
    if not files:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(files)))) as pool:
        futures: list[Future[FileOutcome]] = [pool.submit(fn, f) for f in files]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f.done() and not f.cancelled() and f.exception()]
        if failed:
            for fut in pending:
                fut.cancel()
            on_failure()
            raise failed[0].exception()  # type: ignore[misc]
        return [f.result() for f in futures]
