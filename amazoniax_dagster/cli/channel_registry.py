"""The channel registry (``amazoniax channels import``): channels declared in a YAML/JSON file.

A batch directory keeps a ``project_registry.yaml`` next to its batch files: a channel id (its
``service_id``) with how to fetch it. Accepted shapes::

    channels:                          # or the same mapping at the top level
      s3_financial_data:
        source_type: s3
        description: optional text
        config: {bucket: ..., remote_path: ..., access_key: ..., ...}

    channels:                          # or the same list at the top level
      - channel_id: s3_financial_data  # "id" and "service_id" are accepted too
        source_type: s3
        config: {...}

Each entry is validated with the source config models; errors never echo config values.
Stored configs go through :meth:`FetcherDB.save_channel`, which seals their secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from amazoniax_dagster.core.errors import ConfigError, MessageError
from amazoniax_dagster.core.messages import Identifier, SourceType, parse_source_config
from amazoniax_dagster.db.repository import FetcherDB

_ID_KEYS = ("channel_id", "id", "service_id")
_ENTRY_KEYS = frozenset({"source_type", "config", "description", "name", *_ID_KEYS})
_identifier: TypeAdapter[str] = TypeAdapter(Identifier)


@dataclass(frozen=True)
class RegistryEntry:
    channel_id: str
    source_type: SourceType
    config: dict[str, Any] = field(repr=False)  # holds secrets: never print it


@dataclass(frozen=True)
class RegistryIssue:
    where: str  # the channel id, or "#<index>" when the entry has none
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class Registry:
    entries: list[RegistryEntry]
    issues: list[RegistryIssue]

    @property
    def valid(self) -> bool:
        return not self.issues


@dataclass(frozen=True)
class ImportResult:
    created: list[str]
    updated: list[str]
    skipped: list[RegistryIssue]


class RegistryError(ConfigError):
    """The registry file cannot be read or has invalid entries (``issues``)."""

    def __init__(self, message: str, issues: list[RegistryIssue] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []


def read_registry_file(path: Path) -> Any:
    """YAML (a superset of JSON) or JSON, by content; ``.json`` files are read as JSON."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path} is not UTF-8 text") from exc
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{path} is not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RegistryError(f"{path} is not valid YAML{where}") from exc


def parse_registry(data: Any) -> Registry:
    """Validate every entry; the result has the valid entries and an issue per invalid one."""
    if isinstance(data, dict) and "channels" in data:
        data = data["channels"]
    raw: list[tuple[str, str | None, Any]] = []  # (where, id from the key, entry)
    if isinstance(data, dict):
        raw = [(str(key), str(key), value) for key, value in data.items()]
    elif isinstance(data, list):
        raw = [(f"#{index}", None, value) for index, value in enumerate(data)]
    else:
        raise RegistryError(
            "a registry maps channel ids to {source_type, config} (under `channels:`), "
            "or lists entries with a channel_id"
        )
    entries: list[RegistryEntry] = []
    issues: list[RegistryIssue] = []
    seen: set[str] = set()
    for where, key_id, value in raw:
        try:
            entry = _parse_entry(key_id, value)
        except MessageError as exc:
            name = key_id or (_entry_id(value) if isinstance(value, dict) else None) or where
            issues.append(RegistryIssue(name, str(exc)))
            continue
        if entry.channel_id in seen:
            issues.append(RegistryIssue(entry.channel_id, "declared more than once"))
            continue
        seen.add(entry.channel_id)
        entries.append(entry)
    if not raw:
        raise RegistryError("the registry declares no channels")
    return Registry(entries, issues)


def import_registry(
    registry: Registry, db: FetcherDB, *, skip_invalid: bool = False
) -> ImportResult:
    """Store every entry (secrets sealed); nothing when an entry is invalid, unless
    ``skip_invalid``, which stores the valid ones and reports the others as skipped."""
    if registry.issues and not skip_invalid:
        raise RegistryError(
            f"{len(registry.issues)} invalid channel(s); nothing was stored", registry.issues
        )
    existing = set(db.list_channel_ids())
    created: list[str] = []
    updated: list[str] = []
    for entry in registry.entries:
        db.save_channel(entry.channel_id, entry.source_type.value, entry.config)
        (updated if entry.channel_id in existing else created).append(entry.channel_id)
    return ImportResult(created, updated, list(registry.issues))


def _entry_id(value: dict[str, Any]) -> str | None:
    for key in _ID_KEYS:
        if isinstance(value.get(key), str) and value[key]:
            return str(value[key])
    return None


def _parse_entry(key_id: str | None, value: Any) -> RegistryEntry:
    if not isinstance(value, dict):
        raise MessageError(f"must be a mapping, got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - _ENTRY_KEYS)
    if unknown:
        raise MessageError(
            f"unknown field(s) {', '.join(unknown)}; expected source_type, config, description"
        )
    channel_id = key_id or _entry_id(value)
    if not channel_id:
        raise MessageError("has no channel_id")
    try:
        channel_id = _identifier.validate_python(channel_id)
    except ValidationError as exc:
        raise MessageError(
            "channel id must be letters, digits and . _ : @ - (at most 200)"
        ) from exc
    source = value.get("source_type")
    try:
        source_type = SourceType(str(source))
    except ValueError as exc:
        known = ", ".join(s.value for s in SourceType)
        raise MessageError(f"source_type must be one of {known}, got {source!r}") from exc
    config = value.get("config")
    if not isinstance(config, dict):
        raise MessageError("config is missing or not a mapping")
    parse_source_config(source_type, config)
    return RegistryEntry(channel_id, source_type, dict(config))


__all__ = [
    "ImportResult",
    "Registry",
    "RegistryEntry",
    "RegistryError",
    "RegistryIssue",
    "import_registry",
    "parse_registry",
    "read_registry_file",
]
