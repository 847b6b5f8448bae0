"""``amazoniax doctor``: is every service the fetcher needs reachable and set up?

Each check is a small function that returns a line of detail or raises :class:`CheckFailed`
(or :class:`CheckSkipped`). Checks run in parallel, each in a daemon thread with its own
deadline (``timeout``, at most 5 s), so a stopped or frozen service fails fast instead of
hanging the command; a thread still stuck in a library call is left behind and dies with the
process. Nothing a check reports contains a secret: URLs are redacted and FTP/SFTP servers
are only connected to (TCP), never logged in to.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from amazoniax_dagster.cli.settings import Settings
from amazoniax_dagster.clients.kafka import Topics
from amazoniax_dagster.core.redaction import Redactor, redact_url

MAX_TIMEOUT = 5.0
CheckStatus = Literal["ok", "failed", "skipped"]


class CheckFailed(Exception):
    """The component is not usable; the message says why (no secrets)."""


class CheckSkipped(Exception):
    """The component is not configured here; the message says so."""


@dataclass(frozen=True)
class CheckResult:
    component: str
    status: CheckStatus
    latency_ms: float | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    component: str
    run: Callable[[], str]


@dataclass(frozen=True)
class DoctorReport:
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks]}


# --------------------------------------------------------------------------- running


def run_checks(checks: Sequence[Check], *, timeout: float = MAX_TIMEOUT) -> list[CheckResult]:
    """Run ``checks`` in parallel; each gets ``timeout`` seconds (counted from the start)."""
    timeout = min(timeout, MAX_TIMEOUT)
    results: dict[int, CheckResult] = {}
    threads: list[threading.Thread] = []
    began = time.monotonic()

    def runner(index: int, check: Check) -> None:
        start = time.monotonic()
        try:
            detail = check.run()
            status: CheckStatus = "ok"
        except CheckSkipped as exc:
            status, detail = "skipped", str(exc)
        except CheckFailed as exc:
            status, detail = "failed", str(exc)
        except Exception as exc:  # an unexpected error is a failed check, never a crash
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
        latency = None if status == "skipped" else (time.monotonic() - start) * 1000
        results[index] = CheckResult(check.component, status, latency, Redactor()(detail))

    for index, check in enumerate(checks):
        thread = threading.Thread(
            target=runner, args=(index, check), name=f"doctor-{check.component}", daemon=True
        )
        thread.start()
        threads.append(thread)
    for index, (check, thread) in enumerate(zip(checks, threads, strict=True)):
        thread.join(max(0.0, began + timeout - time.monotonic()))
        if index not in results:
            results[index] = CheckResult(
                check.component, "failed", timeout * 1000, f"no answer within {timeout:g} s"
            )
    return [results[i] for i in range(len(checks))]


def run_doctor(settings: Settings, *, timeout: float = MAX_TIMEOUT) -> DoctorReport:
    """Every check: the core services first, then one per FTP/SFTP server of stored channels."""
    hosts: list[Check] = []

    def channel_hosts() -> str:
        hosts.extend(ftp_host_checks(settings, timeout=timeout))
        return f"{len(hosts)} server(s)"

    core = [
        Check("kafka", lambda: check_kafka(settings, timeout=timeout)),
        Check("s3 output bucket", lambda: check_s3(settings, timeout=timeout)),
        Check("fetcher db", lambda: check_database(settings, timeout=timeout)),
        Check("secret key", lambda: check_secret_key(settings)),
        Check("bedrock", lambda: check_bedrock(settings, timeout=timeout)),
        Check("fetchers repo", lambda: check_fetchers_repo(settings, timeout=timeout)),
        Check("channel hosts", channel_hosts),
    ]
    results = run_checks(core, timeout=timeout)
    listing = results.pop()
    if listing.status == "failed":
        results.append(
            CheckResult("ftp/sftp hosts", "skipped", None, f"not listed: {listing.detail}")
        )
    elif hosts:
        results.extend(run_checks(hosts, timeout=timeout))
    return DoctorReport(results)


# --------------------------------------------------------------------------- the checks


def check_kafka(settings: Settings, *, timeout: float) -> str:
    from amazoniax_dagster.clients.kafka import KafkaBus
    from amazoniax_dagster.core.errors import AmazoniaxError

    if not settings.kafka_bootstrap:
        raise CheckFailed("AMAZONIAX_KAFKA_BOOTSTRAP is not set")
    try:
        topics = KafkaBus(settings.kafka_bootstrap, client_id="amazoniax-doctor").topic_names(
            timeout=timeout
        )
    except AmazoniaxError as exc:
        raise CheckFailed(f"no metadata from {settings.kafka_bootstrap}: {exc}") from exc
    wanted = [
        Topics().fetcher,
        Topics().parsers,
        Topics().status,
        Topics().dead_letter,
    ]
    missing = [t for t in wanted if t not in topics]
    if missing:
        raise CheckFailed(f"missing topic(s): {', '.join(missing)}")
    return f"{settings.kafka_bootstrap}, {len(wanted)} topics present"


def check_s3(settings: Settings, *, timeout: float) -> str:
    """One key listed through the product's own client (``OutputBucket``): the endpoint,
    addressing and credentials its uploads use (the configured keys, else the AWS chain)."""
    from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings
    from amazoniax_dagster.core.errors import AmazoniaxError

    if not settings.output_bucket:
        raise CheckFailed("AMAZONIAX_OUTPUT_BUCKET is not set")
    where = redact_url(settings.s3_endpoint_url) if settings.s3_endpoint_url else "AWS"
    output = OutputSettings(
        bucket=settings.output_bucket,
        endpoint_url=settings.s3_endpoint_url,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        region=settings.s3_region,
    )
    try:
        OutputBucket(output, max_connections=1).ping(timeout=timeout)
    except AmazoniaxError as exc:  # says what failed: access denied, not found, no answer
        raise CheckFailed(f"{where}: {exc}") from exc
    return f"bucket {settings.output_bucket!r} at {where}"


def check_database(settings: Settings, *, timeout: float) -> str:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from amazoniax_dagster.db import migrate

    if not settings.database_url:
        raise CheckFailed("AMAZONIAX_DATABASE_URL is not set")
    url = migrate.engine_url(settings.database_url)
    where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    engine = create_engine(
        url, poolclass=NullPool, connect_args={"connect_timeout": max(1, int(timeout))}
    )
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        secret = [url.password] if url.password else []
        reason = Redactor(secret)(text[0] if text else type(exc).__name__)
        raise CheckFailed(f"cannot connect to {where}: {reason}") from exc
    finally:
        engine.dispose()
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    if current != head:
        raise CheckFailed(
            f"{where} is at migration {current or '(none)'}, the code needs {head}: "
            "run `amazoniax db upgrade`"
        )
    return f"{where}, migration {head} (head)"


def check_secret_key(settings: Settings) -> str:
    from amazoniax_dagster.core.errors import ConfigError
    from amazoniax_dagster.core.sealing import SecretCipher

    if not settings.secret_key:
        raise CheckFailed("AMAZONIAX_SECRET_KEY is not set")
    try:
        SecretCipher(settings.secret_key)
    except ConfigError as exc:
        raise CheckFailed(str(exc)) from exc
    return "a valid Fernet key"


def check_bedrock(settings: Settings, *, timeout: float) -> str:
    if not settings.bedrock_endpoint_url and not settings.bedrock_model_id:
        raise CheckSkipped("not configured (AMAZONIAX_BEDROCK_ENDPOINT_URL / _MODEL_ID unset)")
    if settings.bedrock_endpoint_url:
        endpoint = settings.bedrock_endpoint_url
    else:
        endpoint = f"https://bedrock-runtime.{settings.bedrock_region or 'us-east-1'}.amazonaws.com"
    parts = urlsplit(endpoint)
    if not parts.hostname:
        raise CheckFailed(f"endpoint {redact_url(endpoint)!r} has no host")
    port = parts.port or (80 if parts.scheme == "http" else 443)
    _tcp_connect(parts.hostname, port, timeout)
    model = f", model {settings.bedrock_model_id}" if settings.bedrock_model_id else ""
    return f"{redact_url(endpoint)} reachable (TCP){model}"


def check_fetchers_repo(settings: Settings, *, timeout: float) -> str:
    repo = settings.fetchers_repo
    if not repo:
        raise CheckSkipped("not configured (AMAZONIAX_FETCHERS_REMOTE_URL unset)")
    shown = redact_url(repo)
    remote = "://" in repo or (":" in repo and "@" in repo.split(":", 1)[0])
    if remote:
        command = ["git", "ls-remote", "--heads", repo]
    else:
        command = ["git", "-C", repo, "rev-parse", "--git-dir"]
    env = os.environ | {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSH_COMMAND": f"ssh -o BatchMode=yes -o ConnectTimeout={max(1, int(timeout))}",
    }
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CheckFailed("git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"{shown}: git did not answer within {timeout:g} s") from exc
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        reason = Redactor([repo])(lines[-1]) if lines else f"git exited with {result.returncode}"
        raise CheckFailed(f"{shown}: {reason}")
    return f"{shown} ({'remote' if remote else 'local'} repository)"


def ftp_host_checks(settings: Settings, *, timeout: float) -> list[Check]:
    """One TCP check per distinct (host, port) of the stored FTP/FTPS/SFTP channels."""
    from amazoniax_dagster.core.errors import AmazoniaxError
    from amazoniax_dagster.core.sealing import SecretCipher
    from amazoniax_dagster.db.repository import FetcherDB

    if not settings.database_url:
        raise CheckFailed("AMAZONIAX_DATABASE_URL is not set")
    # Only non-secret columns are read: any valid key will do when none is configured.
    db = FetcherDB(settings.database_url, SecretCipher(SecretCipher.generate_key()), pool_size=1)
    try:
        found = db.channel_hosts()
    except AmazoniaxError as exc:
        raise CheckFailed(str(exc)) from exc
    finally:
        db.close()
    grouped: dict[tuple[str, int, str], list[str]] = {}
    for item in found:
        port = item.port or (22 if item.protocol == "sftp" else 21)
        grouped.setdefault((item.host, port, item.protocol), []).append(item.channel_id)
    checks = []
    for (host, port, protocol), channels in sorted(grouped.items()):
        checks.append(
            Check(
                f"{protocol} {host}:{port}",
                _host_check(host, port, channels, timeout),
            )
        )
    return checks


def _host_check(host: str, port: int, channels: list[str], timeout: float) -> Callable[[], str]:
    def run() -> str:
        _tcp_connect(host, port, timeout)
        shown = ", ".join(channels[:5]) + (f" and {len(channels) - 5} more" if channels[5:] else "")
        return f"TCP connect ok (channels: {shown})"

    return run


def _tcp_connect(host: str, port: int, timeout: float) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError as exc:
        raise CheckFailed(f"{host}:{port} did not answer within {timeout:g} s") from exc
    except OSError as exc:
        raise CheckFailed(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc


__all__ = [
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "DoctorReport",
    "run_checks",
    "run_doctor",
]
