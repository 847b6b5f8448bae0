"""PostgreSQL for the fetcher DB: pooled psycopg2 connections, one transaction per block.

The repository writes plain SQL against the tables of ``models`` (which, with the Alembic
migrations, own the schema). SQLAlchemy is used only where migrations run, so that a job
process does not pay for its import.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from amazoniax_dagster.core.errors import ConfigError, InfrastructureError

if TYPE_CHECKING:
    from psycopg2.extensions import connection, cursor

# URL schemes taken as PostgreSQL: a SQLAlchemy-style driver suffix is accepted and ignored,
# since every one of them reaches the same server through libpq.
SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg")
CONNECT_TIMEOUT_S = 10
CHECKOUT_TIMEOUT_S = 30.0


def libpq_url(url: str) -> str:
    """``url`` as libpq reads it (``postgresql://``), or a ``ConfigError`` naming the scheme."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in SCHEMES:
        return f"postgresql://{rest}"
    # Never echo the URL, which may hold the password: only a scheme, if it is one.
    named = f", not {scheme}://" if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else ""
    raise ConfigError(f"the fetcher DB URL must start with postgresql://{named}")


Params = Sequence[Any] | Mapping[str, Any] | None


class Sql:
    """One open transaction: run statements, read rows (plain tuples, in the selected order)."""

    def __init__(self, cur: cursor) -> None:
        self._cur = cur

    @property
    def cursor(self) -> cursor:
        """The transaction's cursor, for bulk statements (``execute_values``, ``COPY``)."""
        return self._cur

    def execute(self, query: str, params: Params = None) -> None:
        self._cur.execute(query, params)

    def all(self, query: str, params: Params = None) -> list[tuple[Any, ...]]:
        self._cur.execute(query, params)
        return self._cur.fetchall()

    def first(self, query: str, params: Params = None) -> tuple[Any, ...] | None:
        self._cur.execute(query, params)
        return self._cur.fetchone()

    def scalar(self, query: str, params: Params = None) -> Any:
        row = self.first(query, params)
        return row[0] if row is not None else None


class Database:
    """A pool of up to ``2 * pool_size`` connections (``pool_size`` kept open when idle).

    Like SQLAlchemy's ``pool_pre_ping``, a pooled connection is checked with ``SELECT 1`` before
    it is reused, so a database restart costs one reconnect, not a failed job.
    """

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self._dsn = libpq_url(url)
        self._keep = pool_size
        self._slots = threading.BoundedSemaphore(2 * pool_size)
        self._idle: list[connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def transaction(self) -> Iterator[Sql]:
        """One transaction, committed when the block ends and rolled back if it raises.

        psycopg2's errors are raised as they are; the repository translates them."""
        conn = self._checkout()
        try:
            with conn.cursor() as cur:
                yield Sql(cur)
            conn.commit()
        except BaseException:
            if not conn.closed:
                try:
                    conn.rollback()
                except Exception:  # the connection is broken; it is closed below
                    conn.close()
            raise
        finally:
            self._checkin(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _checkout(self) -> connection:
        if not self._slots.acquire(timeout=CHECKOUT_TIMEOUT_S):
            raise InfrastructureError(
                f"all {2 * self._keep} fetcher DB connections stayed busy for "
                f"{CHECKOUT_TIMEOUT_S:.0f} s"
            )
        try:
            return self._usable() or self._connect()
        except BaseException:
            self._slots.release()
            raise

    def _usable(self) -> connection | None:
        """A pooled connection that answers, or None (dead ones are closed on the way)."""
        import psycopg2

        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")  # opens the block's transaction, as it would anyway
                return conn
            except psycopg2.Error:
                conn.close()

    def _connect(self) -> connection:
        import psycopg2

        try:
            parts = urlsplit(self._dsn)
            named_timeout, password = "connect_timeout" in parse_qs(parts.query), parts.password
        except ValueError:  # libpq says what is wrong with it, below
            named_timeout, password = False, None
        extra: dict[str, Any] = {} if named_timeout else {"connect_timeout": CONNECT_TIMEOUT_S}
        try:
            conn: connection = psycopg2.connect(self._dsn, **extra)
            return conn
        except psycopg2.Error as exc:
            # libpq quotes the part of a URL it cannot read, and that may be the password
            # ("invalid percent-encoded token"): raised again without it, and not chained.
            error = type(exc)(_without_password(str(exc), password))
        raise error

    def _checkin(self, conn: connection) -> None:
        import psycopg2.extensions as ext

        try:
            healthy = (
                not conn.closed and conn.get_transaction_status() == ext.TRANSACTION_STATUS_IDLE
            )
            with self._lock:
                if healthy and not self._closed and len(self._idle) < self._keep:
                    self._idle.append(conn)
                    return
            conn.close()
        finally:
            self._slots.release()


def _without_password(message: str, password: str | None) -> str:
    from amazoniax_dagster.core.redaction import Redactor

    return Redactor([password, unquote(password)] if password else [])(message)


def json_param(value: Any) -> Any:
    """``value`` as a JSONB parameter: its JSON text, which psycopg2 quotes into the same literal
    as its ``Json`` adapter does, without importing ``psycopg2.extras``."""
    return json.dumps(value)


__all__ = ["Database", "Sql", "json_param", "libpq_url"]


def unnest_columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column, for ``unnest(%s::type[], ...)``, which turns them back."""
    return [[row[i] for row in rows] for i in range(width)]
