"""What the sync engine needs from a file source: a listing and a way to read one file.

S3, FTP and SFTP differ only here; hashing, classification and upload are shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Readable(Protocol):
    """What a source hands out for one file: bytes in chunks, never all at once."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class RemoteFile:
    """One file as the source's listing shows it."""

    key: str  # the source's own name for it (S3 key, remote path): the identity key
    relative_path: str  # path below the channel's remote_path, checked safe
    size: int | None
    etag: str | None = None
    mtime: datetime | None = None


@dataclass(frozen=True)
class RejectedFile:
    """A listed name that was refused (unsafe), with the reason."""

    key: str
    reason: str


class Source(Protocol):
    """A file source. Implementations translate their library's errors into the error tree."""

    #: Human-readable location for messages, without credentials (e.g. ``s3://bucket/prefix/``).
    location: str

    def list_files(self) -> Iterator[RemoteFile | RejectedFile]: ...

    def open(self, remote: RemoteFile) -> AbstractContextManager[Readable]:
        """The file's bytes as a stream; errors while reading arrive already translated."""
        ...

    def close(self) -> None: ...
