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


class _Forward(logging.Handler):
    def __init__(self, emit: Callable[[int, str], None]) -> None:
        super().__init__()
        self._emit = emit

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._emit(record.levelno, record.getMessage())
        except Exception:
            self.handleError(record)


@contextmanager
def forwarded_logs(
    emit: Callable[[int, str], None],
    *,
    logger_name: str = "amazoniax_dagster",
    level: int = logging.INFO,
) -> Iterator[None]:
    """Send the core's log records (``amazoniax_dagster.*``) to ``emit`` while the block runs,
    e.g. into a Dagster run's event log, whatever the instance's logging config."""
    logger = logging.getLogger(logger_name)
    handler = _Forward(emit)
    handler.setLevel(level)
    previous_level = logger.level
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
