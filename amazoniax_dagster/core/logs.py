"""Redaction at the logging layer, for the duration of one job.

A log record factory (not a filter) is used because filters on a logger do not see records
that propagate from child loggers, and Dagster attaches its own handlers: the factory is the
one place every record of the process passes through, Dagster's included.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from amazoniax_dagster.core.redaction import Redactor


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


class JobLog(logging.Handler):
    """The job's own log lines, kept in a spool (memory stays flat) and uploaded to S3 when
    the job ends, successful or not. Lines arrive already redacted by the record factory."""

    MAX_BYTES = 20 * 1024 * 1024

    def __init__(self, job_id: str, channel_id: str) -> None:
        super().__init__(level=logging.INFO)
        # Every line names its job and channel, so a log read out of context still says whose.
        self.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)-7s job={job_id} channel={channel_id} "
                "%(name)s: %(message)s",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
        self._spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
        self._size = 0
        self._truncated = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
            with self.lock_or_none():
                if self._size + len(line) > self.MAX_BYTES:
                    self._truncated = True
                    return
                self._spool.write(line)
                self._size += len(line)
        except Exception:
            self.handleError(record)

    @contextmanager
    def lock_or_none(self) -> Iterator[None]:
        if self.lock is None:
            yield
            return
        with self.lock:
            yield

    def getvalue(self) -> bytes:
        with self.lock_or_none():
            self._spool.seek(0)
            data = self._spool.read()
            self._spool.seek(0, 2)
        if self._truncated:
            data += b"... (log truncated at 20 MiB)\n"
        return data

    def close(self) -> None:
        self._spool.close()
        super().close()

    @contextmanager
    def capturing(self, logger_name: str = "amazoniax_dagster") -> Iterator[JobLog]:
        logger = logging.getLogger(logger_name)
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)
