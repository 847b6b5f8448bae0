"""obstore (Rust ``object_store``) for S3: the output bucket's store and its credentials, a
customer bucket's store, a streamed body as a binary stream, and obstore's errors read into
the error tree.

A store is always built with explicit settings: its endpoint, region and a credential
provider of ours. obstore would otherwise mix the process's ``AWS_*`` variables into every
store. The output bucket's credentials are the configured keys when there are any, else the
standard AWS chain as botocore resolves it: environment, web identity (IRSA), container
credentials (EKS Pod Identity, ECS), instance metadata. Temporary ones are handed out for at
most five minutes at a time, so botocore refreshes them before they expire.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from amazoniax_dagster.clients.s3 import error_for_code
from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, TransientError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config, S3Credential, S3Store

#: How long obstore keeps temporary credentials before it asks the provider again.
CREDENTIAL_REUSE = timedelta(minutes=5)
DEFAULT_REGION = "us-east-1"
#: A body is bounded by the read timeout between its pieces, not by a total duration.
_NO_OVERALL_TIMEOUT = timedelta(days=1)
_STATUS = re.compile(r"non-2xx status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")


@dataclass(frozen=True)
class StoreSettings:
    bucket: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    #: SSE-KMS for what the product writes: the key's id or ARN ("" = the bucket's default).
    kms_key_id: str | None = None


def credential_provider(settings: StoreSettings) -> Callable[[], S3Credential]:
    """Static keys when configured, else botocore's credential chain."""
    if settings.access_key_id and settings.secret_access_key:
        return static_credentials(settings.access_key_id, settings.secret_access_key)
    import botocore.session

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError(
            f"no credentials for the output bucket {settings.bucket}: set "
            "AMAZONIAX_S3_ACCESS_KEY_ID and AMAZONIAX_S3_SECRET_ACCESS_KEY, or run with an AWS "
            "role (IRSA, EKS Pod Identity, an instance profile)"
        )
    chain = credentials

    def provide() -> S3Credential:
        frozen = chain.get_frozen_credentials()  # refreshed by botocore when near expiry
        return {
            "access_key_id": frozen.access_key or "",
            "secret_access_key": frozen.secret_key or "",
            "token": frozen.token,
            "expires_at": datetime.now(UTC) + CREDENTIAL_REUSE,
        }

    return provide


def customer_store(
    bucket: str,
    *,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    region: str | None,
    max_connections: int,
    timeout_seconds: float,
) -> S3Store:
    """A store for a customer's bucket: the channel's keys, or unsigned requests without them;
    never the process's credentials (no chain) nor the environment's S3 settings.

    Path-style at ``endpoint_url``, else AWS virtual-hosted (path-style for a bucket name that
    cannot be a host name). Each request is sent once (``max_retries`` 0): the job's
    ``RetryPolicy`` is the one retry layer. The timeout bounds the connect and each read, not
    the whole body, so a large object may take as long as it needs while it keeps flowing.
    """
    from obstore.store import S3Store

    region = region or DEFAULT_REGION
    virtual = not endpoint_url and virtual_hostable(bucket)
    if endpoint_url:
        endpoint = endpoint_url.rstrip("/")
    elif virtual:
        endpoint = f"https://{bucket}.s3.{region}.amazonaws.com"
    else:
        endpoint = f"https://s3.{region}.amazonaws.com"
    config: S3Config = {
        "endpoint": endpoint,
        "aws_endpoint_url_s3": endpoint,  # else AWS_ENDPOINT_URL_S3 would win
        "region": region,
        "virtual_hosted_style_request": virtual,
        # each of these would otherwise come from the environment's AWS_* variables
        "skip_signature": not access_key_id,
        "request_payer": False,
        "unsigned_payload": False,
    }
    timeout = timedelta(seconds=timeout_seconds)
    client: ClientConfig = {
        "allow_http": endpoint.startswith("http://"),
        "allow_invalid_certificates": False,
        "connect_timeout": timeout,
        "read_timeout": timeout,
        "timeout": _NO_OVERALL_TIMEOUT,
        "pool_max_idle_per_host": str(max_connections),
    }
    provider = static_credentials(access_key_id, secret_access_key or "") if access_key_id else None
    return S3Store(
        bucket,
        config=config,
        client_options=client,
        retry_config={"max_retries": 0, "retry_timeout": timeout},
        credential_provider=provider,
    )


def virtual_hostable(bucket: str) -> bool:
    """Whether ``bucket`` can be the first label of a host name (else path-style)."""
    return (
        3 <= len(bucket) <= 63
        and "." not in bucket
        and bucket == bucket.lower()
        and bucket[0].isalnum()
        and bucket[-1].isalnum()
        and all(c.isalnum() or c == "-" for c in bucket)
    )


def static_credentials(access_key_id: str, secret_access_key: str) -> Callable[[], S3Credential]:
    """These keys and nothing else (no session token: obstore would take the environment's)."""
    static: S3Credential = {
        "access_key_id": access_key_id,
        "secret_access_key": secret_access_key,
        "token": None,
        "expires_at": None,
    }
    return lambda: static


def make_store(
    settings: StoreSettings, *, max_connections: int = 32, probe: timedelta | None = None
) -> S3Store:
    """An S3Store for ``settings.bucket`` that reads nothing from the environment by itself.

    With ``probe`` (a health check's store), each request is sent once and bounded by it.
    """
    from obstore.store import S3Store

    region = settings.region or DEFAULT_REGION
    endpoint = settings.endpoint_url or f"https://s3.{region}.amazonaws.com"
    config: S3Config = {
        "endpoint": endpoint.rstrip("/"),
        # obstore lets AWS_ENDPOINT_URL_S3 override "endpoint"; set it too, to ours.
        "aws_endpoint_url_s3": endpoint.rstrip("/"),
        "region": region,
        "virtual_hosted_style_request": False,
    }
    if settings.kms_key_id is not None:
        config["server_side_encryption"] = "aws:kms"
        if settings.kms_key_id:
            config["sse_kms_key_id"] = settings.kms_key_id
    client: ClientConfig = {
        "allow_http": endpoint.startswith("http://"),
        "connect_timeout": probe or timedelta(seconds=10),
        "timeout": probe or timedelta(seconds=120),
        "pool_max_idle_per_host": str(max_connections),
    }
    retry: RetryConfig = {
        "max_retries": 0 if probe else 3,
        "retry_timeout": probe or timedelta(seconds=60),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=5),
            "base": 2,
        },
    }
    return S3Store(
        settings.bucket,
        config=config,
        client_options=client,
        retry_config=retry,
        credential_provider=credential_provider(settings),
    )


class ChunkStream(io.RawIOBase):
    """A body obstore hands out in chunks (``GetResult.stream``) as a binary stream.

    ``read(size)`` returns ``size`` bytes unless the body ends first; ``readinto`` serves
    ``io.BufferedReader``. A chunk is copied once, into what the caller gets. ``translate(what)``
    puts obstore's errors in the caller's error tree; with ``expected``, a body that ends early
    is a ``TransientError``.
    """

    def __init__(
        self,
        chunks: Iterator[Any],
        what: str,
        translate: Callable[[str], AbstractContextManager[None]],
        expected: int | None = None,
    ) -> None:
        super().__init__()
        self._chunks: Iterator[Any] | None = chunks
        self._what = what
        self._translate = translate
        self._expected = expected
        self._got = 0
        self._pending = memoryview(b"")  # what is left of the last chunk, not copied

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        size = -1 if size is None else size
        parts: list[memoryview] = []
        wanted = size
        while size < 0 or wanted > 0:
            if not self._pending and not self._next():
                break
            part = self._pending if size < 0 else self._pending[:wanted]
            self._pending = self._pending[len(part) :]
            wanted -= len(part)
            parts.append(part)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        if not self._pending and not self._next():
            return 0
        size = min(len(buffer), len(self._pending))
        memoryview(buffer).cast("B")[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        """Stop early: the rest of the body is dropped with its connection."""
        self._chunks = None
        self._pending = memoryview(b"")
        super().close()

    def _next(self) -> bool:
        """The next chunk into ``_pending``; False at the end of the body."""
        if self._chunks is None:
            return False
        try:
            with self._translate(self._what):
                chunk = next(self._chunks, None)
        except BaseException:
            self.close()
            raise
        if chunk is None:
            self._chunks = None
            if self._expected is not None and self._got != self._expected:
                raise TransientError(
                    f"cannot {self._what}: the body ended after {self._got} of "
                    f"{self._expected} bytes"
                )
            return False
        self._pending = memoryview(chunk)
        self._got += len(self._pending)
        return True


@contextmanager
def translated(what: str) -> Iterator[None]:
    """obstore's errors in the product's error tree (``what``: "upload s3://b/k")."""
    from obstore.exceptions import (
        BaseError,
        NotFoundError,
        PermissionDeniedError,
        UnauthenticatedError,
    )

    try:
        yield
    except AmazoniaxError:
        raise
    except (PermissionDeniedError, UnauthenticatedError) as exc:
        raise ConfigError(f"cannot {what}: access denied ({_first_line(exc)})") from exc
    except (NotFoundError, FileNotFoundError) as exc:  # obstore raises either
        raise ConfigError(f"cannot {what}: not found ({_first_line(exc)})") from exc
    except BaseError as exc:  # e.g. a listing's 403 arrives as a generic error
        raise error_from_reply(str(exc), what) from exc


def error_from_reply(text: str, what: str) -> AmazoniaxError:
    """The error tree's reading of an obstore error's text: the S3 reply's ``Code`` (or its
    status) through :func:`error_for_code`; no reply at all is transient, a TLS failure the
    configuration's."""
    status = _STATUS.search(text)
    if status is not None:
        body = text[status.end() :].split("Debug source:", 1)[0]  # the reply, maybe many lines
        code = _CODE.search(body)
        message = _MESSAGE.search(body)
        return error_for_code(
            code.group(1) if code else status.group(1),
            int(status.group(1)),
            what,
            message=message.group(1) if message else "",
        )
    if "certificate" in text.lower():
        return ConfigError(f"cannot {what}: SSL validation failed")
    if "kind: Timeout" in text:
        return TransientError(f"cannot {what}: timed out")
    return TransientError(f"cannot {what}: {_reason(text)}")


def _reason(text: str) -> str:
    """The first line of obstore's message, without the URL it repeats."""
    first = text.strip().splitlines()[0] if text.strip() else "no reply"
    return first.rsplit(" - ", 1)[-1][:200]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
