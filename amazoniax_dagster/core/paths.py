"""Remote paths: which files a ``file_pattern`` selects, and names that are safe to write.

Pattern semantics (the same for S3, FTP and SFTP). A pattern is matched against the file's
path *relative to* ``remote_path``, with ``/`` as separator:

- ``*`` and ``?`` match within one path segment (they never cross ``/``);
- ``**`` as a whole segment matches any number of segments, including none;
- ``[abc]`` character classes, ``{csv,tsv}`` alternatives; ``!`` at the start selects every
  file (at any depth) that the rest does *not* match;
- matching is case-sensitive; a leading ``/`` in the pattern is ignored.

So ``*.csv`` selects CSV files directly in ``remote_path``; ``**/*.csv`` selects them at any
depth; ``2025-*/*.xml`` selects XML files one folder down. An empty pattern means ``**``
(everything, at any depth). Only a pattern that can match below the top folder makes a
listing recursive.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any

from amazoniax_dagster.core.errors import ConfigError

EVERYTHING = "**"
_DOT_SEGMENTS = frozenset((".", ".."))


def _glob() -> tuple[ModuleType, int]:
    # wcmatch is imported only for channels that set a pattern.
    from wcmatch import glob

    return glob, glob.GLOBSTAR | glob.BRACE | glob.NEGATE | glob.NEGATEALL | glob.DOTGLOB


@dataclass(frozen=True)
class FilePattern:
    pattern: str

    @classmethod
    def parse(cls, pattern: str | None) -> FilePattern:
        text = (pattern or "").strip().lstrip("/") or EVERYTHING
        if text == EVERYTHING:
            return cls(text)
        glob, flags = _glob()
        try:
            glob.translate(text, flags=flags)
        except (ValueError, re.error) as exc:
            raise ConfigError(f"file_pattern {pattern!r} is not a valid glob: {exc}") from exc
        return cls(text)

    def matches(self, relative_path: str) -> bool:
        if self.pattern == EVERYTHING:
            # wcmatch's answer for "**": every path without a "." or ".." segment.
            return _DOT_SEGMENTS.isdisjoint(relative_path.split("/"))
        return bool(self._matcher.match(relative_path))

    @cached_property
    def _matcher(self) -> Any:
        # Compiled once per pattern: ``globmatch`` compiles it again on every call.
        glob, flags = _glob()
        return glob.compile(self.pattern, flags=flags)

    @property
    def recursive(self) -> bool:
        """Whether a file below the top folder can match (else a listing may stay shallow)."""
        return "/" in self.pattern or "**" in self.pattern or self.pattern.startswith("!")


# Unicode's control characters (category Cc): C0, DEL and C1; one regex search per name.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UNSAFE_SEGMENTS = _DOT_SEGMENTS | {""}


class UnsafePathError(ValueError):
    """A remote name that could escape the job folder or confuse a reader."""


def remote_prefix(remote_path: str | None) -> str:
    """``/data/files`` -> ``data/files/``; empty or ``/`` -> ``""`` (the whole bucket)."""
    text = (remote_path or "").strip().strip("/")
    return f"{text}/" if text else ""


def safe_relative_path(name: str) -> str:
    """The name as a relative POSIX path that stays inside its folder, or UnsafePathError.

    Refused: absolute paths, ``.``/``..``/empty segments, backslashes, control characters
    (including NUL and newlines), names that are not valid UTF-8 and names longer than
    1,024 bytes.
    """
    if not name:
        raise UnsafePathError("empty file name")
    if _CONTROL_CHARACTERS.search(name):
        raise UnsafePathError("file name contains control characters")
    if "\\" in name:
        raise UnsafePathError("file name contains a backslash")
    if name.startswith("/"):
        raise UnsafePathError("file name is absolute")
    if not _UNSAFE_SEGMENTS.isdisjoint(name.split("/")):
        raise UnsafePathError("file name has an empty, '.' or '..' segment")
    if _utf8_size(name) > 1024:
        raise UnsafePathError("file name is longer than 1,024 bytes")
    normalized = posixpath.normpath(name)
    if normalized != name or normalized.startswith(".."):
        raise UnsafePathError("file name does not normalise to itself")
    return name


def _utf8_size(name: str) -> int:
    if name.isascii():  # nearly every name: as many bytes as characters, nothing to encode
        return len(name)
    try:
        return len(name.encode())
    except UnicodeEncodeError:  # a lone surrogate (an undecodable byte kept by surrogateescape)
        raise UnsafePathError("file name is not valid UTF-8") from None
