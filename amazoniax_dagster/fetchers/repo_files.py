"""Version folders on disk: read and write one fetcher folder, and the lock writers of one local
cache share."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amazoniax_dagster.core.errors import FetcherCodeError, InfrastructureError
from amazoniax_dagster.core.fetcher_names import (
    PROVENANCE_FILE,
    entry_kind,
    parse_fetcher_name,
)
from amazoniax_dagster.core.paths import UnsafePathError, safe_relative_path

if TYPE_CHECKING:
    pass


def _folder_content(
    name: str, files: Mapping[str, bytes], provenance: Mapping[str, Any]
) -> dict[str, bytes]:
    """The bytes of every file of a version folder, checked, provenance included."""
    parse_fetcher_name(name)
    entry_kind(files)
    content: dict[str, bytes] = {}
    for rel, data in files.items():
        try:
            safe_relative_path(rel)
        except UnsafePathError as exc:
            raise ValueError(f"fetcher file {rel!r}: {exc}") from exc
        if rel == PROVENANCE_FILE or ".git" in rel.split("/"):
            raise ValueError(f"fetcher file {rel!r} is a name the registry keeps for itself")
        if not isinstance(data, bytes):
            raise TypeError(f"fetcher file {rel!r} must be bytes, not {type(data).__name__}")
        content[rel] = data
    try:
        text = json.dumps(dict(provenance), indent=2, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"provenance of {name} is not JSON: {exc}") from exc
    content[PROVENANCE_FILE] = (text + "\n").encode()
    return content


def _write_folder(folder: Path, content: Mapping[str, bytes]) -> None:
    shutil.rmtree(folder, ignore_errors=True)  # a leftover of a crashed, uncommitted write
    for rel, data in content.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _load_folder(folder: Path) -> dict[str, bytes]:
    content = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise FetcherCodeError(f"fetcher {folder.name} holds a symbolic link: {path.name}")
        if path.is_file():
            content[path.relative_to(folder).as_posix()] = path.read_bytes()
    return content


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool, timeout: float) -> Iterator[None]:
    """``fcntl.flock`` on ``path``: one exclusive holder or many shared ones, across processes
    (and across threads: every call opens its own file description). InfrastructureError
    when it is not granted within ``timeout`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise InfrastructureError(
                        f"the fetcher repository lock {path} was held by another process for "
                        f"more than {timeout:g} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
