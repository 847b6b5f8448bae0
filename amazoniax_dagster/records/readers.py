"""Stream records out of a fetched file: JSON, JSONL, CSV/TSV, XML and RSS/Atom.

Each record comes out as a ``Read``: the record (a dict) or, for a malformed one, the reason it
could not be read. One bad record never stops the file; a file that cannot be read at all
raises ``UnreadableFile``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

import charset_normalizer
import feedparser  # type: ignore[import-untyped]
import orjson
from defusedxml import ElementTree

FEED_ROOTS = ("rss", "feed", "rdf")
CHUNK = 1 << 16
# orjson reads integers beyond 64 bits as floats: text with a run of 19 digits is parsed by the
# standard library, which keeps them exact (runs are found with digits all mapped to "0").
_DIGITS = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_RUN = b"0" * 19


class UnreadableFile(ValueError):
    """The file is not in any format records are read from, or is broken as a whole."""


class NotRecords(UnreadableFile):
    """The file is of no format records are read from (a PDF, an image): not a failure."""


class Read(NamedTuple):
    """One record of a file (``record``), or why the record at ``position`` is malformed."""

    position: int
    record: dict[str, Any] | None = None
    error: str | None = None
    feed: bool = False


def format_of(key: str, head: bytes) -> str | None:
    """The format of a file from its name, else from its first bytes; None when not records."""
    name = key.lower().rsplit("/", 1)[-1]
    for suffix, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".csv", "csv"),
        (".tsv", "tsv"),
        (".rss", "xml"),
        (".atom", "xml"),
        (".xml", "xml"),
    ):
        if name.endswith(suffix):
            return fmt
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"["):
        return "json"
    if start == b"<":
        return "xml"
    return None


class Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def read_records(key: str, stream: Stream) -> Iterator[Read]:
    """The records of the file ``key`` whose bytes ``stream`` gives (JSONL is not buffered)."""
    head = stream.read(CHUNK)
    fmt = format_of(key, head)
    if fmt is None:
        raise NotRecords(f"{key}: not a JSON, JSONL, CSV, TSV, XML or feed file")
    if fmt == "jsonl":
        return _jsonl(_lines(head, stream))
    data = head + stream.read()
    if fmt == "json":
        return _json_document(key, data)
    if fmt in ("csv", "tsv"):
        return _delimited(key, data, "\t" if fmt == "tsv" else None)
    return _xml(key, data)


def _lines(head: bytes, stream: Stream) -> Iterator[list[bytes]]:
    """The lines of the stream, a chunk's worth at a time."""
    pending = head
    while chunk := stream.read(CHUNK):
        *lines, pending = (pending + chunk).split(b"\n")
        yield lines
    yield pending.split(b"\n")


def _jsonl(chunks: Iterator[list[bytes]]) -> Iterator[Read]:
    position = 0
    for lines in chunks:
        for line in lines:
            if line and not line.isspace():
                yield _json_record(position, line)
                position += 1


def loads(data: bytes) -> Any:
    """JSON text as Python values, as ``json.loads`` reads it (faster, by orjson)."""
    if _LONG_RUN in data.translate(_DIGITS):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # its error message, or what only it accepts (NaN, a BOM)


def _json_record(position: int, line: bytes) -> Read:
    try:
        value = loads(line)
    except ValueError as exc:
        return Read(position, error=f"line is not JSON: {exc}")
    if not isinstance(value, dict):
        return Read(position, error=f"line is a JSON {type(value).__name__}, not an object")
    return Read(position, value)


def _json_document(key: str, data: bytes) -> Iterator[Read]:
    try:
        value = loads(data)
    except ValueError as exc:
        raise UnreadableFile(f"{key}: not valid JSON: {exc}") from None
    items = _record_list(value)
    for position, item in enumerate(items):
        if isinstance(item, dict):
            yield Read(position, record=item)
        else:
            yield Read(position, error=f"item is a JSON {type(item).__name__}, not an object")


def _record_list(value: Any) -> list[Any]:
    """The records of a JSON document: the array itself, the first array of objects inside an
    envelope object (``{"data": [...]}``, ``{"data": {"items": [...]}}``), else the object."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for level in (value, *(v for v in value.values() if isinstance(v, dict))):
            for inner in level.values():
                if isinstance(inner, list) and inner and all(isinstance(i, dict) for i in inner):
                    return inner
    return [value]


def decode(data: bytes) -> str:
    """Text of ``data`` in its detected encoding (UTF-8 when it is valid UTF-8)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        matches = list(charset_normalizer.from_bytes(data))
        if not matches:
            raise UnreadableFile("the text encoding could not be detected") from None
        best = matches[0]
        # Equally good guesses: windows-1252, the web's default for legacy text (WHATWG).
        tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
        return str(next((m for m in tied if m.encoding == "cp1252"), best))


def _delimited(key: str, data: bytes, delimiter: str | None) -> Iterator[Read]:
    try:
        text = decode(data)
    except UnreadableFile as exc:
        raise UnreadableFile(f"{key}: {exc}") from None
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        return
    names = [name.strip() for name in header]
    for position, row in enumerate(reader):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield Read(position, error=f"row has {len(row)} fields, the header {len(names)}")
            continue
        yield Read(position, record=dict(zip(names, row, strict=True)))


def _xml(key: str, data: bytes) -> Iterator[Read]:
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise UnreadableFile(f"{key}: not well-formed XML: {exc}") from None
    except Exception as exc:  # defusedxml refuses entities, DTDs and the like
        raise UnreadableFile(f"{key}: XML refused: {type(exc).__name__}") from None
    tag = _local(root.tag).lower()
    if tag in FEED_ROOTS:
        return _feed(data)
    return _xml_elements(root)


def _feed(data: bytes) -> Iterator[Read]:
    parsed = feedparser.parse(data)
    for position, entry in enumerate(parsed.entries):
        record = {k: v for k, v in entry.items() if k not in ("published_parsed", "updated_parsed")}
        yield Read(position, record=json.loads(json.dumps(record, default=str)), feed=True)


def _xml_elements(root: Any) -> Iterator[Read]:
    """The records of a plain XML document: the repeated children of the root (or of the first
    element that has repeated children), each as a dict of its attributes and child texts."""
    container = root
    for element in root.iter():
        children = list(element)
        if len(children) > 1 and len({c.tag for c in children}) == 1:
            container = element
            break
    for position, element in enumerate(container):
        yield Read(position, record=_element_dict(element))


def _element_dict(element: Any) -> dict[str, Any]:
    record: dict[str, Any] = {_local(k): v for k, v in element.attrib.items()}
    for child in element:
        name = _local(child.tag)
        value: Any = _element_dict(child) if len(child) else (child.text or "").strip()
        if name in record:
            existing = record[name]
            record[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            record[name] = value
    if not len(element) and not element.attrib:
        return {"value": (element.text or "").strip()}
    return record


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
