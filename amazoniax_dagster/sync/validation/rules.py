"""What a check is given and what it answers: rules, verdicts, limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any, Final

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.paths import FilePattern

if TYPE_CHECKING:
    from jsonschema.protocols import Validator


_MIB: Final = 1024 * 1024


JSON_STREAM_ABOVE: Final = 64 * _MIB


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


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _human_bytes(size: int) -> str:
    if size >= _MIB and size % _MIB == 0:
        return f"{size // _MIB} MiB"
    return f"{size:,} bytes"
