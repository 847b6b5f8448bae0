"""A local folder as a file source: how fetched web/API files enter the shared sync engine.

A site fetcher writes its files into the job's folder; from there hashing, de-duplication
against history, validation and upload are exactly those of S3 and FTP channels. Symlinks
and names that would leave the folder are refused, whoever wrote them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from amazoniax_dagster.core.paths import UnsafePathError, safe_relative_path
from amazoniax_dagster.sources.base import Readable, RejectedFile, RemoteFile


class FolderSource:
    """Every regular file below ``root``, in a stable (sorted) order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = f"fetched files of {root.name}"

    def list_files(self) -> Iterator[RemoteFile | RejectedFile]:
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                relative = path.relative_to(self.root).as_posix()
                try:
                    relative = safe_relative_path(relative)
                except UnsafePathError as exc:
                    yield RejectedFile(relative, str(exc))
                    continue
                if path.is_symlink() or not path.is_file():
                    yield RejectedFile(relative, "not a regular file (symlinks are refused)")
                    continue
                stat = path.stat()
                yield RemoteFile(
                    key=relative,
                    relative_path=relative,
                    size=stat.st_size,
                    mtime=datetime.fromtimestamp(stat.st_mtime, UTC),
                )

    def open(self, remote: RemoteFile) -> AbstractContextManager[Readable]:
        # O_NOFOLLOW: a file swapped for a symlink after listing is still refused.
        fd = os.open(self.root / remote.relative_path, os.O_RDONLY | os.O_NOFOLLOW)
        return cast(AbstractContextManager[Readable], os.fdopen(fd, "rb"))

    def close(self) -> None:
        """Nothing to release; the job removes its folder."""


__all__ = ["FolderSource"]
