"""Kafka message contracts: the job request, the parsers hand-off and the status.

Unknown fields are kept (``extra="allow"``) so that producers can add fields without breaking
the fetcher. Secrets in source configs are ``SecretStr`` so that a stray repr never shows them.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
)

from amazoniax_dagster.core.bounded_json import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    load_bounded_json,
)
from amazoniax_dagster.core.date_ranges import DateRangeError, normalize_date_range
from amazoniax_dagster.core.errors import AmazoniaxError, MessageError
from amazoniax_dagster.core.records_config import RecordMapping

# A letter or digit (any script), then letters, digits, "-", "_", ".", ":" or "@".
_IDENTIFIER = re.compile(r"[^\W_][\w.:@-]{0,199}")
IDENTIFIER_RULE = (
    "1-200 characters: a letter or digit (any script) first, then letters, digits, "
    "'-', '_', '.', ':' or '@'; no '..'"
)


def _identifier(value: str) -> str:
    """Identifiers end up in S3 keys, Dagster partition keys and run keys (NFC, so one
    spelling of a name is one key)."""
    text = unicodedata.normalize("NFC", value.strip())
    if not _IDENTIFIER.fullmatch(text) or ".." in text:
        raise ValueError(f"not a valid id ({IDENTIFIER_RULE})")
    return text


Identifier = Annotated[str, AfterValidator(_identifier)]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_climbing(value: str, what: str) -> str:
    """Refuse a remote path or pattern with a ``..`` segment or a control character."""
    if _CONTROL.search(value):
        raise ValueError(f"{what} has a control character")
    segments = value.lstrip("!").replace("\\", "/").split("/")
    if ".." in segments:
        raise ValueError(f"{what} climbs out of its folder with '..'")
    return value


def _http_url(value: str, what: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an http:// or https:// URL with a host")
    return value.strip()


class SourceType(StrEnum):
    S3 = "s3"
    FTP = "ftp"
    HTML = "html"
    API = "api"


class Flow(StrEnum):
    """Which path a job takes: chosen from ``is_new`` and ``heal_mode``."""

    NEW = "new"
    EXISTING = "existing"
    HEAL = "heal"


class JobStatus(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    REQUIRES_HUMAN_REVIEW = "requires_human_review"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, defer_build=True)


class _ChannelConfig(_Open):
    """What every channel config may carry, whatever its source type."""

    # Fetch on a cadence without Kafka messages: a 5-field cron expression in UTC.
    schedule: str | None = None
    # Where channel_records finds each unified field (paths); fields left out are detected.
    records: RecordMapping | None = None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        from amazoniax_dagster.core.cadence import check_schedule

        if value is None:
            return None
        try:
            return check_schedule(value)
        except AmazoniaxError as exc:
            raise ValueError(str(exc)) from exc


class FileChecks(_ChannelConfig):
    """What every channel says about checking its files before upload."""

    # "flag": invalid files are uploaded and reported; "quarantine": they go under
    # <prefix>/<channel>/_quarantine/<job>/ and are not announced to parsers.
    invalid_files: Literal["flag", "quarantine"] = "flag"
    # A JSON Schema every JSON/JSONL file must match, or one per glob (first match wins).
    json_schema: dict[str, Any] | None = None
    json_schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # CSV/TSV must be UTF-8 unless this is false (then the detected encoding is accepted).
    csv_require_utf8: bool = True
    # File types (".pdf") accepted without a format check; None = the product's default list.
    allowed_extensions: list[str] | None = None

    @field_validator("remote_path", "file_pattern", check_fields=False)
    @classmethod
    def _inside(cls, value: str, info: Any) -> str:
        """File channels (S3, FTP, SFTP) may not climb out of their folder."""
        return _no_climbing(value, info.field_name)


class S3SourceConfig(FileChecks):
    """An S3 channel. ``endpoint_url``/``region`` are optional for S3-compatible stores."""

    bucket: Annotated[str, StringConstraints(min_length=3, max_length=63)]
    remote_path: str = ""
    access_key: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    file_pattern: str = "**"
    endpoint_url: str | None = None
    region: str | None = None
    # Seconds before connecting or a silent server counts as failed (TransientError).
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    # "listing": trust (key, size, etag) to skip unchanged objects without downloading them;
    # "always_hash": download and hash everything (for stores whose listings lie).
    verify: Literal["listing", "always_hash"] = "listing"

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "endpoint_url")


class FtpSourceConfig(FileChecks):
    """An FTP, explicit-FTPS or SFTP channel (``protocol``); ``port`` defaults to 21 or 22.

    The connection fields below the first block have safe defaults: TLS certificates and SSH
    host keys are verified unless the config says otherwise, and every socket times out.
    """

    host: str
    username: str = "anonymous"
    password: SecretStr | None = None
    remote_path: str = "/"
    file_pattern: str = "*"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    protocol: Literal["ftp", "ftps", "sftp"] = "ftp"
    verify: Literal["listing", "always_hash"] = "listing"
    # Seconds before connecting or a silent server counts as failed (TransientError).
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    # Parallel transfers (one connection or SFTP session each); a server that allows fewer
    # makes the pool shrink to what it accepts.
    max_connections: Annotated[int, Field(ge=1, le=16)] = 16
    # FTPS: verify the server certificate; ca_cert_pem trusts exactly that CA (self-signed).
    tls_verify: bool = True
    ca_cert_pem: str | None = None
    # SFTP: the server's public key(s) ("ssh-ed25519 AAAA...", known_hosts lines) or SHA256
    # fingerprints, one per line. "verify" refuses a server without a match;
    # "accept_any" skips the check (logs the fingerprint; not for production).
    host_key: str | None = None
    host_key_policy: Literal["verify", "accept_any"] = "verify"
    # SFTP key authentication (OpenSSH or PEM private key text), instead of the password.
    private_key: SecretStr | None = None
    private_key_passphrase: SecretStr | None = None

    @field_validator("host")
    @classmethod
    def _plain_host(cls, value: str) -> str:
        host = value.strip()
        if not host or _CONTROL.search(host) or any(c in host for c in "/\\@?# "):
            raise ValueError("host must be a plain host name or address (no scheme or path)")
        return host


class WebSourceConfig(FileChecks):
    url: str
    channel_name: str | None = None
    login_credentials: dict[str, SecretStr] | None = None
    navigation_details: dict[str, Any] | None = None
    api_documentation_path: str | None = None
    auth_keys: dict[str, SecretStr] | None = None

    @field_validator("url")
    @classmethod
    def _site_url(cls, value: str) -> str:
        return _http_url(value, "url")

    @field_validator("api_documentation_path")
    @classmethod
    def _doc_url(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            return _http_url(value, "api_documentation_path")
        return value

    @field_validator("navigation_details")
    @classmethod
    def _date_range(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None or value.get("date_range") is None:
            return value
        try:
            return value | {"date_range": normalize_date_range(value["date_range"])}
        except DateRangeError as exc:
            raise ValueError(str(exc)) from exc


SourceConfig = S3SourceConfig | FtpSourceConfig | WebSourceConfig

_CONFIG_MODELS: dict[SourceType, type[SourceConfig]] = {
    SourceType.S3: S3SourceConfig,
    SourceType.FTP: FtpSourceConfig,
    SourceType.HTML: WebSourceConfig,
    SourceType.API: WebSourceConfig,
}


def parse_source_config(source_type: SourceType, config: dict[str, Any]) -> SourceConfig:
    """Validate a channel config for its source type; the error never echoes input values."""
    try:
        return _CONFIG_MODELS[source_type].model_validate(config)
    except ValidationError as exc:
        raise MessageError(
            f"invalid {source_type} config: {describe_validation_error(exc)}"
        ) from exc


class FetcherJob(_Open):
    """One message on ``amazoniax_fetcher``: one job for one channel.

    ``config`` may be omitted; the channel's stored config is used then.
    """

    job_id: Identifier
    channel_id: Identifier
    source_type: SourceType
    is_new: bool = False
    heal_mode: bool = False
    config: dict[str, Any] | None = None

    @property
    def flow(self) -> Flow:
        if self.heal_mode:
            return Flow.HEAL
        return Flow.NEW if self.is_new else Flow.EXISTING


def parse_fetcher_job(
    raw: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> FetcherJob:
    """Parse and validate one input message, including its source config when present.

    The size and nesting depth are checked before parsing. A ``navigation_details.date_range``
    comes back in its canonical form (see ``core/date_ranges.py``)."""
    data = load_bounded_json(raw, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(data, dict):
        raise MessageError(f"message must be a JSON object, got {type(data).__name__}")
    try:
        job = FetcherJob.model_validate(data)
    except ValidationError as exc:
        raise MessageError(f"invalid job message: {describe_validation_error(exc)}") from exc
    if job.config is not None:
        config = parse_source_config(job.source_type, job.config)
        if isinstance(config, WebSourceConfig) and config.navigation_details is not None:
            job.config = job.config | {"navigation_details": config.navigation_details}
    return job


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic error as text *without* the offending input values (they may be secrets)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Outgoing(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class ParsersMessage(_Outgoing):
    """One message on ``amazoniax_parsers``: a job folder with new/updated files in it."""

    job_id: str
    channel_id: str
    s3_output_path: str
    file_count: int
    timestamp: datetime = Field(default_factory=utc_now)

    @field_serializer("timestamp")
    def _ts(self, ts: datetime) -> str:
        return _iso(ts)


class StatusMetadata(_Open):
    files_processed: int = 0
    execution_time_seconds: float = 0.0


class StatusMessage(_Outgoing):
    """One message on ``amazoniax_status``: how a job ended."""

    job_id: str | None
    channel_id: str | None
    status: JobStatus
    message: str
    timestamp: datetime = Field(default_factory=utc_now)
    metadata: StatusMetadata = Field(default_factory=StatusMetadata)

    @field_serializer("timestamp")
    def _ts(self, ts: datetime) -> str:
        return _iso(ts)


class DeadLetter(_Outgoing):
    """One message on the dead-letter topic: the original message and why it was refused."""

    reason: str
    error_class: str
    topic: str
    partition: int
    offset: int
    job_id: str | None = None
    channel_id: str | None = None
    original: str
    timestamp: datetime = Field(default_factory=utc_now)

    @field_serializer("timestamp")
    def _ts(self, ts: datetime) -> str:
        return _iso(ts)
