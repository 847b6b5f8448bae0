"""What a file is: its kind from the extension, else sniffed from its first bytes."""

from __future__ import annotations

import codecs
import posixpath
import re
from collections.abc import Mapping
from typing import Final

_EXTENSION_KINDS: Final[Mapping[str, str]] = {
    ".json": "json",
    ".geojson": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".xml": "xml",
    ".rss": "xml",
    ".atom": "xml",
    ".xsd": "xml",
    ".html": "html",
    ".htm": "html",
}


_KIND_NAMES: Final[Mapping[str, str]] = {
    "json": "JSON",
    "jsonl": "JSON Lines",
    "csv": "CSV",
    "tsv": "TSV",
    "xml": "XML",
    "html": "HTML",
}


_LOOKS_KIND: Final[Mapping[str, str]] = {"JSON": "json", "XML": "xml", "HTML": "html"}


_BINARY_SIGNATURES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"%PDF-", "a PDF"),
    (b"\x1f\x8b", "gzip data"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PAR1", "a Parquet file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (OLE2)"),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x28\xb5\x2f\xfd", "zstd data"),
    (b"\x7fELF", "an executable"),
)


_ZIP: Final = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


# extension -> (format name, signatures, how far into the file the signature may start)
_EXPECTED_SIGNATURES: Final[Mapping[str, tuple[str, tuple[bytes, ...], int]]] = {
    ".pdf": ("PDF", (b"%PDF-",), 1024),
    ".zip": ("ZIP", _ZIP, 0),
    ".xlsx": ("XLSX", _ZIP, 0),
    ".gz": ("gzip", (b"\x1f\x8b",), 0),
    ".png": ("PNG", (b"\x89PNG\r\n\x1a\n",), 0),
    ".jpg": ("JPEG", (b"\xff\xd8\xff",), 0),
    ".jpeg": ("JPEG", (b"\xff\xd8\xff",), 0),
    ".parquet": ("Parquet", (b"PAR1",), 0),
}


# a declared kind -> the look-alikes that mean the bytes are something else
_BINARY_LABELS: Final = frozenset(label for _, label in _BINARY_SIGNATURES)


_MISMATCHES: Final[Mapping[str, frozenset[str]]] = {
    "json": _BINARY_LABELS | {"HTML", "XHTML", "XML"},
    "jsonl": _BINARY_LABELS | {"HTML", "XHTML", "XML"},
    "csv": _BINARY_LABELS | {"HTML", "XHTML", "XML", "JSON"},
    "tsv": _BINARY_LABELS | {"HTML", "XHTML", "XML", "JSON"},
    "xml": _BINARY_LABELS | {"HTML", "JSON"},
    "html": _BINARY_LABELS | {"JSON"},
}


_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


_LEADING_MARKUP: Final = re.compile(r"\s*(<\?xml[^>]*>|<!--.*?-->)", re.DOTALL)


_HTML_START: Final = re.compile(
    r"<(!doctype\s+html|html|head|body|title|meta|div|p|h[1-6]|table|script|style|pre|br)[\s>/]",
    re.IGNORECASE,
)


_XML_START: Final = re.compile(r"<(!DOCTYPE\s|[A-Za-z_][\w.:-]*[\s>/])")


_JSON_START: Final = re.compile(r"(\{\s*[\"}]|\[\s*([\[\]{\"\-0-9]|true|false|null))")


def _bom(data: bytes) -> tuple[str, int] | None:
    """The encoding a byte order mark declares, and the mark's length."""
    for mark, encoding in _BOMS:
        if data.startswith(mark):
            return encoding, len(mark)
    return None


def _looks_like(head: bytes) -> str | None:
    """What the first bytes look like: "JSON", "XML", "HTML", "XHTML", a binary label, None."""
    for signature, label in _BINARY_SIGNATURES:
        if head.startswith(signature):
            return label
    bom = _bom(head)
    text = head[:4096].decode(bom[0] if bom else "utf-8", errors="replace").lstrip("\ufeff")
    xml_declared = False
    while match := _LEADING_MARKUP.match(text):
        xml_declared = xml_declared or match.group(1).startswith("<?xml")
        text = text[match.end() :]
    text = text.lstrip()
    if _HTML_START.match(text):
        return "XHTML" if xml_declared else "HTML"
    if xml_declared or _XML_START.match(text):
        return "XML"
    if _JSON_START.match(text):
        return "JSON"
    return None


def _extension(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[1].lower()


def kind_of(path: str, head: bytes) -> str:
    """The file's kind: by extension first, else by its first bytes, else "other".

    ``validate_file`` reports "other" for the allow-listed extensions whatever they contain.
    """
    declared = _EXTENSION_KINDS.get(_extension(path))
    if declared is not None:
        return declared
    looks = _looks_like(head)
    if looks == "XHTML":
        return "xml"
    return _LOOKS_KIND.get(looks or "", "other")
