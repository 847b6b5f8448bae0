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

import io
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Final

from amazoniax_dagster.sync.validation.json_files import (
    _check_json,
    _check_jsonl,
)
from amazoniax_dagster.sync.validation.kinds import (
    _EXPECTED_SIGNATURES,
    _EXTENSION_KINDS,
    _KIND_NAMES,
    _MISMATCHES,
    _extension,
    _looks_like,
    kind_of,
)
from amazoniax_dagster.sync.validation.markup import (
    _check_html,
    _check_xml,
)
from amazoniax_dagster.sync.validation.rules import (
    _HEAD_BYTES,
    _REASON_MAX,
    DEFAULT_ALLOWED_EXTENSIONS,
    DEFAULT_RULES,
    JSON_STREAM_ABOVE,
    Details,
    FileCheck,
    ValidationRules,
    Verdict,
    _Input,
    _Invalid,
    _short,
)
from amazoniax_dagster.sync.validation.tables import (
    _check_table,
)

if TYPE_CHECKING:
    pass

# jsonschema and charset-normalizer are imported where they are used: most channels have no
# JSON schema and only UTF-8 files, and every job process imports this module.

"""JSON files larger than this are checked by streaming unless a schema needs them whole."""


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


_CHECKERS: Final[Mapping[str, Callable[[_Input], Details]]] = {
    "json": _check_json,
    "jsonl": _check_jsonl,
    "csv": _check_table,
    "tsv": _check_table,
    "xml": _check_xml,
    "html": _check_html,
}


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
