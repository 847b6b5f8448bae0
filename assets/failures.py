"""Expected failures (config, site changed, validation): their message, no stack trace.

Dagster records the stack of the exception that fails a step, ``dg.Failure`` included, and the
UI prints it under the message: for an expected failure that is a screen of framework frames
around one line that says what is wrong. An :class:`ExpectedFailure` is recorded with an empty
stack (the UI then shows the message and metadata only). Unexpected errors keep their stack.

How: Dagster formats the failing exception with ``traceback.TracebackException``, which takes
at most ``sys.tracebacklimit`` frames. :meth:`ExpectedFailure.without_stack` sets that limit to
0 as the failure is raised; the failure's ``__str__``, which ``TracebackException`` calls right
after taking the (empty) stack, puts the limit back. ``tests/integration/test_operations.py``
shows the result in the UI.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any, Self

import dagster as dg

_lock = threading.Lock()
_saved: list[int | None] = []  # the limit before the pending failure, when one is pending


class ExpectedFailure(dg.Failure):
    """A ``dg.Failure`` whose description and metadata say all; no retries."""

    def __init__(self, description: str, metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__(description=description, metadata=metadata, allow_retries=False)

    def without_stack(self) -> Self:
        """The failure, to be raised at once: Dagster records it without a stack."""
        with _lock:
            if not _saved:
                _saved.append(getattr(sys, "tracebacklimit", None))
            sys.tracebacklimit = 0
        return self

    def __str__(self) -> str:
        restore_traceback_limit()
        return super().__str__()


def restore_traceback_limit() -> None:
    """Put back the limit :meth:`ExpectedFailure.without_stack` changed (idempotent)."""
    with _lock:
        if not _saved:
            return
        previous = _saved.pop()
        if previous is not None:
            sys.tracebacklimit = previous
        elif hasattr(sys, "tracebacklimit"):
            del sys.tracebacklimit
