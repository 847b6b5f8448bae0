"""Redaction at the logging layer, for the duration of one job.

A log record factory (not a filter) is used because filters on a logger do not see records
that propagate from child loggers, and Dagster attaches its own handlers: the factory is the
one place every record of the process passes through, Dagster's included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from amazoniax_dagster.redaction import Redactor


@contextmanager
def redacted_log_records(redactor: Redactor) -> Iterator[None]:
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = redactor(message)
        record.args = None
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)
