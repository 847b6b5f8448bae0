"""Format checks for fetched files, run between fetch and upload.

``validate_file(path, stream, rules)`` reads one fetched file and says whether its bytes are
what its name promises: a ``.json`` file parses (and matches a JSON Schema when one applies),
a ``.csv`` is a rectangular UTF-8 table, an ``.xml`` is well-formed and declares no entities,
an ``.html`` has at least one element. The answer is a ``FileCheck``: a ``Verdict``, the first
problem as a short human ``reason`` (with line/column or row when known) and ``details``
about what was seen (encoding, delimiter, column and row counts, XML root, ...).

Kinds come from the extension first (``kind_of``); a file without an extension is sniffed
from its first bytes. Extensions outside the known kinds pass as SKIPPED when they are in
``ValidationRules.allowed_other_extensions`` (known binary types still have their magic
bytes checked, so an HTML error page saved as ``report.pdf`` is caught) and are INVALID
otherwise. A file whose bytes are plainly another format than its name says (an HTML error
page served as ``data.json``, gzip bytes in a ``.csv``) is INVALID with
"expected JSON, got what looks like HTML".

Memory stays flat whatever the file size: CSV, JSON Lines, XML and HTML are read in chunks;
JSON is loaded whole only up to ``JSON_STREAM_ABOVE`` (64 MiB) or, when a schema applies,
up to ``max_bytes_parsed``; above that its well-formedness is checked by the incremental
``ijson`` parser and schema validation is skipped with a note in ``details``.

Choices worth knowing:

- JSON and JSON Lines must be UTF-8 (RFC 8259; a UTF-8 BOM is tolerated). ``NaN`` and
  ``Infinity`` are refused: they are not JSON, whatever Python's ``json`` accepts. A schema
  applies to a JSON document and to every record of a JSON Lines file; ``format`` is an
  annotation (Draft 2020-12 default), not checked.
- CSV/TSV must be UTF-8 unless ``csv_require_utf8`` is off; a byte order mark declares its
  encoding (utf-8-sig, utf-16, utf-32) and is accepted. Rows are CSV records counted from
  1, the header being row 1; blank lines are ignored; quoting is parsed strictly, so a quote
  that is never closed (which would swallow the rest of the file) is reported.
- XML may carry a DOCTYPE (old RSS 0.91 feeds do) but may not declare entities: that is what
  billion-laughs and external-entity attacks need.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from html.parser import HTMLParser
from typing import IO, TYPE_CHECKING, Any, Final
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler, feature_external_ges, feature_external_pes
from xml.sax.xmlreader import AttributesImpl

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.paths import FilePattern

if TYPE_CHECKING:
    from _csv import Reader

    from jsonschema.protocols import Validator

# jsonschema and charset-normalizer are imported where they are used: most channels have no
# JSON schema and only UTF-8 files, and every job process imports this module.

_MIB: Final = 1024 * 1024
JSON_STREAM_ABOVE: Final = 64 * _MIB
"""JSON files larger than this are checked by streaming unless a schema needs them whole."""

_CHUNK: Final = 64 * 1024
_HEAD_BYTES: Final = 64 * 1024
_SNIFF_CHARS: Final = 8 * 1024  # csv.Sniffer can be quadratic: keep its sample small
_REASON_MAX: Final = 300

Details = dict[str, str | int | float]


class Verdict(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    SKIPPED = "skipped"  # the type is not checked (allowed by the extension allow-list)


@dataclass(frozen=True)
class FileCheck:
    path: str
    kind: str  # "json" | "jsonl" | "csv" | "tsv" | "xml" | "html" | "other"
    verdict: Verdict
    reason: str | None
    details: Details


DEFAULT_ALLOWED_EXTENSIONS: Final = frozenset(
    {".pdf", ".zip", ".gz", ".xlsx", ".xls", ".parquet", ".png", ".jpg", ".jpeg", ".txt", ".bin"}
)


@dataclass(frozen=True)
class ValidationRules:
    """What the checks demand. Invalid rules raise ``ConfigError`` when built.

    ``json_schemas_by_pattern`` maps a ``FilePattern`` glob (matched against the file's
    relative path) to a schema; the first match wins over ``json_schema``.
    ``allowed_other_extensions`` are lower-case and start with a dot; ``""`` allows files
    without an extension that are not recognisably JSON, XML or HTML.
    """

    json_schema: Mapping[str, Any] | None = None
    json_schemas_by_pattern: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    allowed_other_extensions: frozenset[str] = DEFAULT_ALLOWED_EXTENSIONS
    # Schema checks load the whole document: above this only well-formedness is checked.
    max_bytes_parsed: int = 32 * _MIB
    csv_require_utf8: bool = True

    def __post_init__(self) -> None:
        if self.json_schema is not None:
            _check_schema("json_schema", self.json_schema)
        for pattern, schema in self.json_schemas_by_pattern.items():
            FilePattern.parse(pattern)
            _check_schema(f"json_schemas_by_pattern[{pattern!r}]", schema)
        bad = sorted(e for e in self.allowed_other_extensions if e and not e.startswith("."))
        if bad:
            raise ConfigError(f"allowed_other_extensions must start with '.': {bad}")
        if self.max_bytes_parsed < 0:
            raise ConfigError("max_bytes_parsed must not be negative")
        lowered = frozenset(e.lower() for e in self.allowed_other_extensions)
        object.__setattr__(self, "allowed_other_extensions", lowered)

    def json_validator_for(self, path: str) -> tuple[str | None, Validator | None]:
        """The pattern that chose the schema (None for ``json_schema``) and its validator."""
        if not self.json_schemas_by_pattern and self.json_schema is None:
            return None, None  # the usual case: no jsonschema import for it
        from jsonschema import Draft202012Validator

        for pattern, schema in self.json_schemas_by_pattern.items():
            if FilePattern.parse(pattern).matches(path):
                return pattern, Draft202012Validator(schema)
        if self.json_schema is None:
            return None, None
        return None, Draft202012Validator(self.json_schema)


DEFAULT_RULES: Final = ValidationRules()


def _check_schema(name: str, schema: Mapping[str, Any]) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ConfigError(f"{name} is not a valid JSON Schema: {exc.message}") from exc


# --- what a file is -----------------------------------------------------------------------

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


# --- the entry points ---------------------------------------------------------------------


class _Invalid(Exception):
    """The first problem found in a file (internal: becomes an INVALID FileCheck)."""

    def __init__(self, reason: str, details: Details | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or {}


@dataclass(frozen=True)
class _Input:
    path: str
    kind: str
    stream: IO[bytes]
    size: int
    head: bytes
    rules: ValidationRules


def validate_file(
    path: str, stream: IO[bytes], rules: ValidationRules = DEFAULT_RULES
) -> FileCheck:
    """Check one file's format. Reads ``stream`` from the start; leaves it at position 0.

    ``stream`` must be seekable (the fetch spools to a ``SpooledTemporaryFile``). Only
    ``ConfigError`` (a schema ``$ref`` that cannot be resolved) and I/O errors of the
    stream itself are raised; every problem of the file is a verdict.
    """
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    head = stream.read(_HEAD_BYTES)
    ext = _extension(path)
    kind = kind_of(path, head)
    try:
        if ext not in _EXTENSION_KINDS and (ext or kind == "other"):
            if ext in rules.allowed_other_extensions:
                return _check_other(path, ext, size, head)
            shown = ext or "(no extension)"
            return FileCheck(
                path, kind, Verdict.INVALID, f"file type {shown} is not allowed", {"bytes": size}
            )
        item = _Input(path, kind, stream, size, head, rules)
        try:
            details = _check_structured(item)
        except _Invalid as problem:
            reason = _short(problem.reason, _REASON_MAX)
            return FileCheck(
                path, kind, Verdict.INVALID, reason, {"bytes": size, **problem.details}
            )
        return FileCheck(path, kind, Verdict.VALID, None, {"bytes": size, **details})
    finally:
        stream.seek(0)


def summarize(checks: Sequence[FileCheck]) -> dict[str, int]:
    """How many checks came out valid, invalid and skipped (every key present)."""
    counts = {verdict.value: 0 for verdict in Verdict}
    for check in checks:
        counts[check.verdict.value] += 1
    return counts


def _check_structured(item: _Input) -> Details:
    if item.size == 0:
        raise _Invalid("empty file")
    looks = _looks_like(item.head)
    if looks in _MISMATCHES[item.kind]:
        raise _Invalid(
            f"expected {_KIND_NAMES[item.kind]}, got what looks like {looks}",
            {"looks_like": str(looks)},
        )
    return _CHECKERS[item.kind](item)


def _check_other(path: str, ext: str, size: int, head: bytes) -> FileCheck:
    expected = _EXPECTED_SIGNATURES.get(ext)
    details: Details = {"bytes": size}
    if expected is None:
        return FileCheck(path, "other", Verdict.SKIPPED, None, details)
    name, signatures, window = expected
    if size == 0:
        return FileCheck(path, "other", Verdict.INVALID, "empty file", details)
    if any(head.startswith(s) or (window and s in head[:window]) for s in signatures):
        return FileCheck(path, "other", Verdict.SKIPPED, None, {**details, "signature": "ok"})
    looks = _looks_like(head)
    if looks is None:
        reason = f"expected {name}, but the file does not start with the {name} signature"
    else:
        reason = f"expected {name}, got what looks like {looks}"
        details["looks_like"] = looks
    return FileCheck(path, "other", Verdict.INVALID, reason, details)


# --- JSON ---------------------------------------------------------------------------------

_JSON_TOP_EVENTS: Final[Mapping[str, str]] = {
    "start_map": "object",
    "start_array": "array",
    "string": "string",
    "number": "number",
    "integer": "number",
    "double": "number",
    "boolean": "boolean",
    "null": "null",
}
_UTF8_CONTINUATION: Final = bytes(range(0x80, 0xC0))


class _NonStandardConstant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


def _json_encoding(item: _Input, what: str) -> int:
    """How many BOM bytes to skip; non-UTF-8 byte order marks are refused."""
    bom = _bom(item.head)
    if bom is None:
        return 0
    if bom[0] != "utf-8-sig":
        raise _Invalid(f"{what} must be UTF-8 (RFC 8259), this file is {bom[0].upper()}")
    return bom[1]


def _check_json(item: _Input) -> Details:
    skip = _json_encoding(item, "JSON")
    details: Details = {"encoding": "utf-8-sig" if skip else "utf-8"}
    pattern, validator = item.rules.json_validator_for(item.path)
    if pattern is not None:
        details["schema_pattern"] = pattern
    fits = item.size <= item.rules.max_bytes_parsed
    if fits and (item.size <= JSON_STREAM_ABOVE or validator is not None):
        doc = _load_json(item.stream, skip)
        details.update(parsed="whole", top=_json_type(doc))
        if isinstance(doc, list):
            details["items"] = len(doc)
        if validator is not None:
            _check_against_schema(validator, doc, where="")
            details["schema"] = "valid"
        return details
    top = _stream_json(item.stream, skip)
    limit = min(JSON_STREAM_ABOVE, item.rules.max_bytes_parsed)
    details.update(parsed=f"streamed (larger than {_human_bytes(limit)})", top=top)
    if validator is not None:
        details["schema"] = (
            f"skipped: larger than max_bytes_parsed ({_human_bytes(item.rules.max_bytes_parsed)})"
        )
    return details


def _load_json(stream: IO[bytes], skip: int) -> Any:
    stream.seek(skip)
    data = stream.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _text_position(data, exc.start)
        raise _Invalid(
            f"line {line}, column {column}: not UTF-8 (byte 0x{data[exc.start]:02X})"
        ) from None
    del data
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise _Invalid(f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _NonStandardConstant as exc:
        _, error = _parse_json_stream(stream, skip)  # json.loads does not say where
        where = f"line {error[0]}, column {error[1]}: " if error else ""
        raise _Invalid(f"{where}{exc} is not valid JSON") from None
    except RecursionError:
        raise _Invalid("nested too deeply to check") from None


def _stream_json(stream: IO[bytes], skip: int) -> str:
    """Check well-formedness chunk by chunk with ijson; the type of the top-level value."""
    top, error = _parse_json_stream(stream, skip)
    if error is not None:
        line, column, message = error
        raise _Invalid(f"line {line}, column {column}: {message}")
    return top


def _parse_json_stream(stream: IO[bytes], skip: int) -> tuple[str, tuple[int, int, str] | None]:
    """The top-level value's type, and the first error's line, column and message if any."""
    import ijson  # type: ignore[import-untyped]  # only for JSON too large to load whole

    events = ijson.utils.sendable_list()
    parser = ijson.basic_parse_coro(events, use_float=True)
    stream.seek(skip)
    top = ""
    chunks = 0
    try:
        while chunk := stream.read(_CHUNK):
            parser.send(chunk)
            if not top and events:
                top = _JSON_TOP_EVENTS.get(events[0][0], "value")
            events.clear()
            chunks += 1
        parser.close()
    except ijson.JSONError:
        return top or "value", _locate_json_error(stream, skip, chunks)
    return top or "value", None


def _locate_json_error(stream: IO[bytes], skip: int, good_chunks: int) -> tuple[int, int, str]:
    """Re-parse up to the failing chunk, then byte by byte: where and what the error is."""
    import ijson

    events = ijson.utils.sendable_list()
    parser = ijson.basic_parse_coro(events, use_float=True)
    position = _TextPosition()
    stream.seek(skip)
    try:
        for _ in range(good_chunks):
            chunk = stream.read(_CHUNK)
            parser.send(chunk)
            events.clear()
            position.advance(chunk)
        chunk = stream.read(_CHUNK)
        for index in range(len(chunk)):
            parser.send(chunk[index : index + 1])
            events.clear()
            position.advance(chunk[index : index + 1])
        parser.close()
    except ijson.JSONError as exc:
        return position.line, position.column + 1, _ijson_message(exc)
    return position.line, position.column + 1, "invalid JSON"


def _ijson_message(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    first = text.strip().splitlines()[0] if text.strip() else "invalid JSON"
    return re.sub(r"^(lexical|parse) error: ", "", first).rstrip(".")


class _TextPosition:
    """Line and column (in characters) reached after the UTF-8 bytes seen so far."""

    def __init__(self) -> None:
        self.line = 1
        self.column = 0

    def advance(self, data: bytes) -> None:
        newlines = data.count(b"\n")
        if newlines:
            self.line += newlines
            self.column = _utf8_chars(data[data.rfind(b"\n") + 1 :])
        else:
            self.column += _utf8_chars(data)


def _utf8_chars(data: bytes) -> int:
    return len(data.translate(None, _UTF8_CONTINUATION))


def _text_position(data: bytes, offset: int) -> tuple[int, int]:
    position = _TextPosition()
    position.advance(data[:offset])
    return position.line, position.column + 1


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _check_against_schema(validator: Validator, doc: Any, where: str) -> None:
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    try:
        error = best_match(validator.iter_errors(doc))
    except Unresolvable as exc:
        raise ConfigError(f"the JSON Schema has a $ref that cannot be resolved: {exc}") from exc
    except RecursionError:
        raise _Invalid(f"{where}nested too deeply to check against the schema") from None
    if error is not None:
        message = _short(error.message, 160)
        raise _Invalid(f"{where}schema violation at {error.json_path}: {message}")


def _check_jsonl(item: _Input) -> Details:
    skip = _json_encoding(item, "JSON Lines")
    pattern, validator = item.rules.json_validator_for(item.path)
    limit = item.rules.max_bytes_parsed
    stream = item.stream
    stream.seek(skip)
    records = 0
    number = 0
    while line := stream.readline(limit + 1):
        number += 1
        if len(line) > limit:
            raise _Invalid(f"line {number} is longer than max_bytes_parsed ({_human_bytes(limit)})")
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            _, column = _text_position(line, exc.start)
            raise _Invalid(
                f"line {number}, column {column}: not UTF-8 (byte 0x{line[exc.start]:02X})"
            ) from None
        try:
            record = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise _Invalid(f"line {number}, column {exc.colno}: {exc.msg}") from None
        except _NonStandardConstant as exc:
            raise _Invalid(f"line {number}: {exc} is not valid JSON") from None
        except RecursionError:
            raise _Invalid(f"line {number}: nested too deeply to check") from None
        if validator is not None:
            _check_against_schema(validator, record, where=f"line {number}: ")
        records += 1
    if records == 0:
        raise _Invalid("empty file (only blank lines)")
    details: Details = {"encoding": "utf-8-sig" if skip else "utf-8", "records": records}
    if validator is not None:
        details["schema"] = "valid"
    if pattern is not None:
        details["schema_pattern"] = pattern
    return details


# --- CSV and TSV --------------------------------------------------------------------------

# among equally likely guesses, name the encoding a data file is most likely to be in
_PREFERRED_ENCODINGS: Final = (
    "cp1252",
    "iso8859_15",
    "latin_1",
    "cp1250",
    "cp1251",
    "cp932",
    "shift_jis",
    "euc_jp",
    "gb18030",
    "big5",
    "cp949",
    "euc_kr",
    "utf_16_le",
    "utf_16_be",
)


def _check_table(item: _Input) -> Details:
    bom = _bom(item.head)
    encoding = bom[0] if bom else "utf-8"
    if bom is None and not _looks_utf8(item.head, complete=item.size <= len(item.head)):
        encoding = _fallback_encoding(item)
    try:
        return {"encoding": encoding, **_scan_table(item, encoding)}
    except UnicodeDecodeError:
        if encoding != "utf-8":
            raise _Invalid(_undecodable(item.stream, encoding)) from None
    encoding = _fallback_encoding(item)
    try:
        return {"encoding": encoding, **_scan_table(item, encoding)}
    except UnicodeDecodeError:
        raise _Invalid(_undecodable(item.stream, encoding)) from None


def _looks_utf8(head: bytes, complete: bool) -> bool:
    """Whether the first bytes are UTF-8 text (a sequence cut by the head's end is fine)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not complete and exc.reason == "unexpected end of data"
    return True


def _fallback_encoding(item: _Input) -> str:
    """The encoding a non-UTF-8 table seems to be in, if the rules accept one (else _Invalid)."""
    stream = item.stream
    where = _first_undecodable(stream, "utf-8")
    if where is None:  # valid UTF-8, but with NUL bytes: binary, or UTF-16 without a BOM
        offset = item.head.find(b"\x00")
        where = (offset, item.head.count(b"\n", 0, offset) + 1, 0)
    offset, line, byte = where
    sample = item.head
    if len(sample) < item.size and offset + 16 * 1024 > len(sample):  # add the bad part
        stream.seek((offset - 16 * 1024) & ~3)  # aligned, for UTF-16/32 without a BOM
        sample = item.head[: 32 * 1024] + stream.read(32 * 1024)
    guess = _guess_encoding(sample)
    at = f"byte 0x{byte:02X} on line {line}"
    if guess is None:
        raise _Invalid(f"not UTF-8, nor any text encoding (binary data?): {at}")
    if item.rules.csv_require_utf8:
        raise _Invalid(f"not UTF-8 (looks like {guess}): {at}", {"encoding_guess": guess})
    return guess


def _guess_encoding(sample: bytes) -> str | None:
    """charset-normalizer's guess, named as data files usually declare it ("windows-1252")."""
    import charset_normalizer

    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        return None
    candidates = {
        name
        for match in matches
        if abs(match.chaos - best.chaos) < 0.01 and abs(match.coherence - best.coherence) < 0.01
        for name in match.could_be_from_charset
    }
    chosen = next((name for name in _PREFERRED_ENCODINGS if name in candidates), best.encoding)
    return _encoding_label(chosen)


def _encoding_label(python_name: str) -> str:
    name = codecs.lookup(python_name).name
    label = re.sub(r"^cp(125\d)$", r"windows-\1", name)
    label = re.sub(r"^iso8859-(\d+)$", r"iso-8859-\1", label)
    try:
        codecs.lookup(label)
    except LookupError:
        return name
    return label


def _first_undecodable(stream: IO[bytes], encoding: str) -> tuple[int, int, int] | None:
    """Offset, line and value of the first byte that does not decode, or None."""
    stream.seek(0)
    carry = b""
    base = 0  # offset of carry + chunk in the file
    lines = 1
    ascii_lines = not codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    while True:
        chunk = stream.read(_CHUNK)
        data = carry + chunk
        if not data:
            return None
        try:
            data.decode(encoding)
            good = len(data)
        except UnicodeDecodeError as exc:
            if chunk and exc.end >= len(data) - 1 and len(data) - exc.start < 8:
                good = exc.start  # maybe a character cut by the chunk's end: read on
            else:
                offset = base + exc.start
                line = lines + data.count(b"\n", 0, exc.start) if ascii_lines else 0
                return offset, line, data[exc.start]
        if not chunk:
            return None
        if ascii_lines:
            lines += data.count(b"\n", 0, good)
        carry = data[good:]
        base += good


def _undecodable(stream: IO[bytes], encoding: str) -> str:
    where = _first_undecodable(stream, encoding)
    label = _encoding_label(encoding)
    if where is None:
        return f"does not decode as {label}"
    offset, line, byte = where
    at = f"line {line}" if line else f"offset {offset}"
    return f"does not decode as {label} (byte 0x{byte:02X} on {at})"


def _scan_table(item: _Input, encoding: str) -> Details:
    """Sniff the dialect, then check every row has the header's column count."""
    item.stream.seek(0)
    text = io.TextIOWrapper(item.stream, encoding=encoding, errors="strict", newline="")
    try:
        sample = text.read(_SNIFF_CHARS)
        if len(sample) == _SNIFF_CHARS and "\n" in sample:
            sample = sample[: sample.rfind("\n") + 1]
        dialect, how = _sniff_dialect(sample, item.kind)
        text.seek(0)
        return {**_count_rows(csv.reader(text, dialect, strict=True)), "dialect": how}
    finally:
        text.detach()


def _sniff_dialect(sample: str, kind: str) -> tuple[type[csv.Dialect], str]:
    delimiters = "\t" if kind == "tsv" else ",;\t|"
    try:
        return csv.Sniffer().sniff(sample, delimiters=delimiters), "sniffed"
    except csv.Error:
        return (csv.excel_tab if kind == "tsv" else csv.excel), "default"


def _count_rows(reader: Reader) -> Details:
    expected = 0
    records = 0
    blank = 0
    delimiter = reader.dialect.delimiter
    try:
        for row in reader:
            if not row:
                blank += 1
                continue
            records += 1
            if records == 1:
                expected = len(row)
            elif len(row) != expected:
                line = reader.line_num
                at = f" (line {line})" if line != records + blank else ""
                raise _Invalid(
                    f"row {records} has {len(row)} columns, expected {expected}{at}",
                    {"delimiter": delimiter, "columns": expected},
                )
    except csv.Error as exc:
        message = str(exc)
        if message == "unexpected end of data":
            message = "a quoted field is never closed (unexpected end of data)"
        raise _Invalid(f"row {records + 1}: {message}", {"delimiter": delimiter}) from None
    if records == 0:
        raise _Invalid("empty file (only blank lines)")
    details: Details = {
        "delimiter": delimiter,
        "quotechar": reader.dialect.quotechar or "",
        "columns": expected,
        "rows": records - 1,
    }
    if blank:
        details["blank_lines"] = blank
    return details


# --- XML ----------------------------------------------------------------------------------


class _XmlOutline(ContentHandler):
    def __init__(self) -> None:
        super().__init__()
        self.root = ""
        self.elements = 0

    def startElement(self, name: str, attrs: AttributesImpl) -> None:
        if not self.root:
            self.root = name
        self.elements += 1


def _check_xml(item: _Input) -> Details:
    # A DOCTYPE may name an external DTD (old RSS feeds do): expat skips it unread, as
    # nothing may fetch it. Entity declarations, which every entity attack needs, are refused.
    # Imported here: the expat reader pulls in urllib.request (~50 ms of every job's start-up).
    from defusedxml import EntitiesForbidden
    from defusedxml.expatreader import DefusedExpatParser

    parser = DefusedExpatParser(forbid_dtd=False, forbid_entities=True, forbid_external=False)
    parser.setFeature(feature_external_ges, False)
    parser.setFeature(feature_external_pes, False)
    outline = _XmlOutline()
    parser.setContentHandler(outline)
    item.stream.seek(0)
    try:
        while chunk := item.stream.read(_CHUNK):
            parser.feed(chunk)
        parser.close()
    except SAXParseException as exc:
        line, column = exc.getLineNumber(), (exc.getColumnNumber() or 0) + 1
        raise _Invalid(f"line {line}, column {column}: {exc.getMessage()}") from None
    except EntitiesForbidden as exc:
        raise _Invalid(
            f"line {parser.getLineNumber()}: declares the entity {exc.name!r}; entity "
            "declarations are refused (they enable entity-expansion and external-entity attacks)"
        ) from None
    return {"root": outline.root, "elements": outline.elements}


# --- HTML ---------------------------------------------------------------------------------

_META_CHARSET: Final = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)


class _HtmlOutline(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements += 1


def _html_encoding(head: bytes) -> tuple[str, str]:
    """The encoding to read an HTML file with, and where it came from."""
    bom = _bom(head)
    if bom is not None:
        return bom[0], "bom"
    match = _META_CHARSET.search(head[:8192])
    if match is not None:
        try:
            name = codecs.lookup(match.group(1).decode("ascii")).name
        except LookupError:
            return "utf-8", "default (unknown meta charset)"
        # as browsers do: a meta tag cannot declare UTF-16/32, the bytes read it as ASCII
        return ("utf-8" if name.startswith(("utf-16", "utf-32")) else name), "meta"
    return "utf-8", "default"


def _check_html(item: _Input) -> Details:
    encoding, source = _html_encoding(item.head)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    parser = _HtmlOutline()
    has_text = False
    item.stream.seek(0)
    try:
        while True:
            chunk = item.stream.read(_CHUNK)
            text = decoder.decode(chunk, final=not chunk)
            has_text = has_text or bool(text.strip())
            parser.feed(text)
            if not chunk:
                break
        parser.close()
    except AssertionError as exc:  # how html.parser (via _markupbase) reports what it can't read
        line, column = parser.getpos()
        raise _Invalid(f"line {line}, column {column + 1}: {exc}") from None
    if not has_text:
        raise _Invalid("empty file (only whitespace)")
    if parser.elements == 0:
        raise _Invalid("no HTML element found")
    return {
        "encoding": _encoding_label(encoding),
        "encoding_from": source,
        "elements": parser.elements,
    }


# --- helpers ------------------------------------------------------------------------------

_CHECKERS: Final[Mapping[str, Callable[[_Input], Details]]] = {
    "json": _check_json,
    "jsonl": _check_jsonl,
    "csv": _check_table,
    "tsv": _check_table,
    "xml": _check_xml,
    "html": _check_html,
}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _human_bytes(size: int) -> str:
    if size >= _MIB and size % _MIB == 0:
        return f"{size // _MIB} MiB"
    return f"{size:,} bytes"


__all__ = [
    "DEFAULT_ALLOWED_EXTENSIONS",
    "DEFAULT_RULES",
    "JSON_STREAM_ABOVE",
    "Details",
    "FileCheck",
    "ValidationRules",
    "Verdict",
    "kind_of",
    "summarize",
    "validate_file",
]
