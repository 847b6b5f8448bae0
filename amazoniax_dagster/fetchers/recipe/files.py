"""The output folder of a run: safe, unique file names, and bodies moved in from spool files."""

from __future__ import annotations

import email.message
import mimetypes
import os
import posixpath
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.paths import UnsafePathError, safe_relative_path
from amazoniax_dagster.fetchers.base import FetchedFile

_EXTENSIONS = {
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/rss+xml": "xml",
    "application/atom+xml": "xml",
    "text/plain": "txt",
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}


def extension_for(content_type: str) -> str:
    """A file extension (no dot) for a media type; ``bin`` when unknown."""
    media = content_type.partition(";")[0].strip().lower()
    if media in _EXTENSIONS:
        return _EXTENSIONS[media]
    if media.endswith(("+json", "/json")):
        return "json"
    if media.endswith(("+xml", "/xml")):
        return "xml"
    guessed = mimetypes.guess_extension(media) if media else None
    return guessed.lstrip(".") if guessed else "bin"


def server_file_name(headers: httpx.Headers, url: str) -> str | None:
    """The server's name for a download: Content-Disposition, else the URL path's last part.

    Only the last path segment is kept, so a name like ``../../x`` becomes ``x``.
    """
    disposition = email.message.Message()
    disposition["content-disposition"] = headers.get("content-disposition", "")
    name = disposition.get_filename() or unquote(posixpath.basename(urlsplit(url).path))
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cc")
    name = name.replace("\\", "/").rpartition("/")[2].strip()
    return name if name not in ("", ".", "..") else None


class OutputFolder:
    """Moves finished bodies into ``out_dir`` under unique names and lists them."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.files: list[FetchedFile] = []
        self._used: set[str] = set()

    def add(self, name: str, body: Path, *, source_url: str | None) -> FetchedFile:
        """Move ``body`` in as ``name`` (``name_2.ext`` ... on a collision)."""
        try:
            relative = self._unique(safe_relative_path(name))
        except UnsafePathError as exc:
            raise ConfigError(f"cannot save a file under that name: {exc}") from exc
        target = self.out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        size = body.stat().st_size
        os.replace(body, target)
        fetched = FetchedFile(relative, size, source_url)
        self.files.append(fetched)
        return fetched

    def _unique(self, name: str) -> str:
        stem, dot, ext = name.rpartition(".") if "." in posixpath.basename(name) else (name, "", "")
        candidate, number = name, 1
        while candidate in self._used or (self.out_dir / candidate).exists():
            number += 1
            candidate = f"{stem}_{number}{dot}{ext}"
        self._used.add(candidate)
        return candidate


def is_safe_name(name: str) -> bool:
    try:
        safe_relative_path(name)
    except UnsafePathError:
        return False
    return True


__all__ = ["OutputFolder", "extension_for", "is_safe_name", "server_file_name"]
