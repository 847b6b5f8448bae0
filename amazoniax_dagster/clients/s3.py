"""What an S3 error reply means in the error tree, and boto3 clients for the local stack.

Customer buckets are read through :mod:`amazoniax_dagster.clients.s3_reader` and
:mod:`amazoniax_dagster.clients.s3_objects`, which map each error reply with
:func:`error_for_code`. boto3 (the demo, tests and benchmarks) is imported
lazily: loading the code location must not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Error codes that mean "the configuration is wrong": retrying cannot help.
CONFIG_CODES = {
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access denied",
    "InvalidAccessKeyId": "the access key is not known to the server",
    "SignatureDoesNotMatch": "the secret access key is wrong",
    "InvalidToken": "the session token is invalid",
    "ExpiredToken": "the credentials have expired",
    "NoSuchBucket": "the bucket does not exist",
    "InvalidBucketName": "the bucket name is invalid",
    "PermanentRedirect": "the bucket is in another region",
    "AuthorizationHeaderMalformed": "the region or credentials are malformed",
    "403": "access denied",
    "404": "not found",
}
TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "NoSuchKey",  # listed, then gone: the source changed under the job; a re-run relists
    "XAmzContentSHA256Mismatch",  # the body changed on the way: send it again
    "BadDigest",
    "IncompleteBody",
    "ServiceUnavailable",
    "503",
    "500",
    "502",
    "504",
}


def make_client(
    *,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    region: str | None,
    max_pool_connections: int = 32,
) -> S3Client:
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region or "us-east-1",
        connect_timeout=10,
        read_timeout=30,
        max_pool_connections=max_pool_connections,
        # Our own RetryPolicy retries with the stored settings; botocore's would hide them.
        retries={"total_max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": "path"} if endpoint_url else None,
        signature_version="s3v4" if access_key_id else None,
    )
    if access_key_id is None:
        from botocore import UNSIGNED

        config = config.merge(Config(signature_version=UNSIGNED))
    session = boto3.session.Session()
    client: S3Client = session.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )
    return client


def error_for_code(
    code: str,
    status: int | None,
    what: str,
    *,
    message: str = "",
    retry_after: float | None = None,
) -> AmazoniaxError:
    """The error an S3 error reply means (its ``Code`` and HTTP status), whoever parsed it."""
    if code in CONFIG_CODES:
        return ConfigError(f"cannot {what}: {CONFIG_CODES[code]} ({code})")
    if code in TRANSIENT_CODES or (status is not None and (status >= 500 or status == 429)):
        return TransientError(
            f"cannot {what}: server said {code or status}", retry_after=retry_after
        )
    return ConfigError(f"cannot {what}: {code or status}: {message}".rstrip(": "))
