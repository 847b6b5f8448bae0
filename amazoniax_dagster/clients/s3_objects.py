"""GETs from a customer's bucket through obstore (Rust ``object_store``: signing and HTTP run
off the GIL), for the keys obstore requests byte for byte.

obstore parses a key into path segments: it refuses control characters, empty segments
(``a//b``) and ``.``/``..`` segments, and drops a leading or trailing ``/``. Those keys, the
listing, and every GET under a proxy or a CA bundle that obstore would apply differently stay
with :mod:`amazoniax_dagster.clients.s3_reader`, whose errors these match (except the
``Retry-After`` of a throttled reply: obstore does not hand out reply headers).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from io import BytesIO
from typing import TYPE_CHECKING

from amazoniax_dagster.clients.object_store import ChunkStream, customer_store, error_from_reply
from amazoniax_dagster.core.errors import AmazoniaxError, TransientError

if TYPE_CHECKING:
    from amazoniax_dagster.clients.s3_reader import ReaderSettings

#: Objects up to this size are fetched whole in one call; larger ones are streamed.
WHOLE_LIMIT = 1024 * 1024
_CHUNK = 1024 * 1024
#: Proxies S3Reader takes from the environment as botocore does; reqwest (obstore) reads the
#: same variables by rules of its own (NO_PROXY matching, credentials in the URL).
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def obstore_safe(key: str) -> bool:
    """Whether obstore sends exactly ``key``: no control character (C0, DEL, C1), no lone
    surrogate, no leading or trailing ``/``, no empty, ``.`` or ``..`` segment."""
    if not key or key[0] == "/" or key[-1] == "/":
        return False
    for c in key:
        code = ord(c)
        if code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF:
            return False
    return all(segment not in ("", ".", "..") for segment in key.split("/"))


def obstore_usable(endpoint_url: str | None, environ: Mapping[str, str]) -> bool:
    """False when the environment names a proxy, or a CA bundle for an HTTPS endpoint (AWS's
    or the channel's): then every GET goes through S3Reader, which honours them exactly as
    botocore does. obstore could only add the bundle to its trusted roots, not replace them."""
    if any(environ.get(name) or environ.get(name.lower()) for name in _PROXY_VARIABLES):
        return False
    https = not endpoint_url or endpoint_url.lower().startswith("https://")
    return not (https and environ.get("AWS_CA_BUNDLE"))


class ObstoreObjects:
    """GETs from one customer bucket; thread-safe, its connection pool shared by the engine's
    transfer threads."""

    def __init__(self, bucket: str, settings: ReaderSettings) -> None:
        self._store = customer_store(
            bucket,
            endpoint_url=settings.endpoint_url,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            region=settings.region,
            max_connections=settings.max_connections,
            timeout_seconds=settings.timeout_seconds,
        )

    def get_object(self, key: str, *, what: str) -> BytesIO | ChunkStream:
        """The object's bytes: whole when small, else a stream read in parts."""
        from obstore import get

        with translated_get(what):
            result = get(self._store, key)
        expected = int(result.meta["size"])
        if expected > WHOLE_LIMIT:
            chunks = result.stream(min_chunk_size=_CHUNK)
            return ChunkStream(chunks, what, translated_get, expected=expected)
        with translated_get(what):
            data = result.bytes()
        if len(data) != expected:
            raise TransientError(
                f"cannot {what}: the body ended after {len(data)} of {expected} bytes"
            )
        return BytesIO(data)


@contextmanager
def translated_get(what: str) -> Iterator[None]:
    """obstore's errors for a GET as S3Reader reports them (:func:`error_from_reply`)."""
    from obstore.exceptions import BaseError

    try:
        yield
    except AmazoniaxError:
        raise
    except (BaseError, FileNotFoundError) as exc:  # obstore raises either for a 404
        raise error_from_reply(str(exc), what) from exc


__all__ = ["ObstoreObjects", "obstore_safe", "obstore_usable"]
