"""Retrying transient failures: exponential backoff with jitter, a server's Retry-After honoured.

Only ``TransientError`` is retried; every other error class fails at once (a wrong password
retried three times is a retry storm, not resilience).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from amazoniax_dagster.core.errors import TransientError

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")
log = logging.getLogger(__name__)


class RetryCount:
    """How many retries a policy made (shared by the threads of one job)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` extra attempts after the first; the n-th wait is about ``delay * 2**n``."""

    retries: int = 3
    delay_seconds: float = 30.0
    max_delay_seconds: float = 600.0
    made: RetryCount = field(default_factory=RetryCount, compare=False, repr=False)

    def wait_seconds(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = exc.retry_after if isinstance(exc, TransientError) else None
        if hint is not None:
            return min(max(hint, 0.0), self.max_delay_seconds)
        if self.delay_seconds <= 0:
            return 0.0
        from tenacity.wait import wait_exponential_jitter

        backoff = wait_exponential_jitter(
            initial=self.delay_seconds, max=self.max_delay_seconds, jitter=self.delay_seconds
        )
        return float(backoff(state))

    def call(self, fn: Callable[[], T], *, what: str) -> T:
        """Run ``fn``, retrying ``TransientError``; the last error is re-raised as it was.

        The first attempt is a plain call, since a job makes two calls a file (download,
        upload) that almost always succeed at once. Only a
        ``TransientError`` hands over to tenacity, whose first attempt re-raises that error,
        so attempt numbers, waits and logs are the same as if tenacity had made it. tenacity is
        imported only then.
        """
        try:
            return fn()
        except TransientError as exc:
            if self.retries <= 0:
                raise
            first: TransientError | None = exc
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

        def attempt() -> T:
            nonlocal first
            if first is not None:
                failed, first = first, None
                raise failed
            return fn()

        def _log(state: RetryCallState) -> None:
            self.made.add()
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s failed (attempt %d of %d): %s; retrying",
                what,
                state.attempt_number,
                self.retries + 1,
                exc,
            )

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self.wait_seconds,
            retry=retry_if_exception_type(TransientError),
            before_sleep=_log,
            reraise=True,
        )
        return retrying(attempt)
