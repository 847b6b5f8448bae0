"""The one error tree of amazoniax.

Every failure the product reports is one of these classes; foreign errors (boto3, kafka,
psycopg, ...) are translated where they enter, with ``raise ... from exc``. The class decides
what happens next (see docs/architecture.md, "Errors")::

    AmazoniaxError
    ├── MessageError            a Kafka message that cannot be handled -> dead-letter topic
    ├── TransientError          timeout, connection reset, 429, 5xx -> retry with backoff
    ├── ConfigError             bad credentials, missing bucket/path, bad pattern -> fail, no heal
    │   └── UnsafeURLError      a configured URL points at a forbidden network
    ├── SiteChangedError        known endpoint gone, schema drift, empty where history is not
    │                           -> fail, start heal mode
    ├── FetcherCodeError        exception inside a generated fetcher -> fail, start heal mode
    ├── ValidationFailedError   a new fetcher version failed validation -> fail, heal again
    ├── NoFetcherError          a site has no fetcher and none can be generated -> fail
    ├── ExhaustedError          retries / heal attempts used up -> requires_human_review
    └── InfrastructureError     our own services (DB, output bucket, Kafka) misbehave -> fail

``error_class`` names the class for status messages and run tags, so downstream consumers can
act on it without parsing messages.
"""

from __future__ import annotations


class AmazoniaxError(Exception):
    """Base of every error amazoniax raises on purpose."""

    error_class = "error"


class MessageError(AmazoniaxError):
    """A Kafka message that is not a valid job (it goes to the dead-letter topic)."""

    error_class = "invalid_message"


class TransientError(AmazoniaxError):
    """A failure that may pass by itself: retry the same thing later.

    ``retry_after`` carries a server's Retry-After hint in seconds, when it gave one.
    """

    error_class = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigError(AmazoniaxError):
    """The channel's configuration is wrong (credentials, bucket, path, pattern)."""

    error_class = "config"


class UnsafeURLError(ConfigError):
    """A URL from a config points at a network the deployment does not allow."""

    error_class = "unsafe_url"


class SiteChangedError(AmazoniaxError):
    """The remote site no longer looks the way its fetcher expects."""

    error_class = "site_changed"


class FetcherCodeError(AmazoniaxError):
    """A generated fetcher raised or misbehaved."""

    error_class = "fetcher_code"


class ValidationFailedError(AmazoniaxError):
    """A generated fetcher did not pass validation on the site's channels (not published)."""

    error_class = "validation_failed"


class NoFetcherError(AmazoniaxError):
    """A web/API site has no fetcher, and this deployment cannot generate one."""

    error_class = "no_fetcher"


class ExhaustedError(AmazoniaxError):
    """Retries or heal attempts are used up; a person has to look."""

    error_class = "exhausted"


class InfrastructureError(AmazoniaxError):
    """One of our own services (fetcher DB, output bucket, Kafka) failed."""

    error_class = "infrastructure"


__all__ = [
    "AmazoniaxError",
    "ConfigError",
    "ExhaustedError",
    "FetcherCodeError",
    "InfrastructureError",
    "MessageError",
    "NoFetcherError",
    "SiteChangedError",
    "TransientError",
    "UnsafeURLError",
    "ValidationFailedError",
]


class IntakeBugError(AmazoniaxError):
    """A message made our own intake code fail; the message is dead-lettered, intake goes on."""

    error_class = "internal"
