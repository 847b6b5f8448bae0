"""The output of ``dagster dev`` and everything it starts, relayed by ``amazoniax dev`` to its own:
as it comes while Dagster runs; once the stop began, one line per run (its RUN_CANCELED or other
run-level event) and one per record of the Dagster processes. A run interrupted by the stop logs
its stack trace with its step and run events; those lines are left out (counted).
"""

from __future__ import annotations

import os
import pty
import re
import threading
from typing import IO

#: the first line of a Dagster log record, colored or not: "2026-01-02 03:04:05 +0000 - ..."
RECORD_START = re.compile(rb"^(?:\x1b\[[0-9;]*m)*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")

#: a record logged by a run: "... - dagster - ERROR - <job> - <run id> - ..."
RUN_RECORD = re.compile(rb" - [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} - ")

#: a run-level event: "... - <pid> - RUN_CANCELED - Execution of run ... canceled."
RUN_EVENT = re.compile(rb" - RUN_[A-Z_]+ - ")


def shown_while_stopping(line: bytes) -> bool:
    """Whether ``line`` is relayed once the stop began."""
    if not RECORD_START.match(line):
        return False  # the rest of a record: a stack trace, mostly
    return not RUN_RECORD.search(line) or bool(RUN_EVENT.search(line))


def output_channel(terminal: bool) -> tuple[IO[bytes], int]:
    """Where the children write and the relay reads: a pseudo-terminal when ours is a
    ``terminal`` (Dagster colors its logs for terminals only), else a pipe. The end to read, and
    the file descriptor to hand to the children (close it once they have it)."""
    read_fd, write_fd = pty.openpty() if terminal else os.pipe()
    return os.fdopen(read_fd, "rb"), write_fd


class OutputRelay:
    """Copies ``source`` to ``sink`` line by line on a thread of its own."""

    def __init__(self, source: IO[bytes], sink: IO[bytes]) -> None:
        self._source = source
        self._sink = sink
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dagster-output", daemon=True)
        #: lines left out since the stop began
        self.left_out = 0

    def start(self) -> None:
        self._thread.start()

    def stopping(self) -> None:
        """The stop began: from now on relay only what ``shown_while_stopping`` lets through."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            for line in iter(self._source.readline, b""):
                if self._stopping.is_set() and not shown_while_stopping(line):
                    self.left_out += 1
                    continue
                self._sink.write(line)
                self._sink.flush()
        except OSError:  # a pseudo-terminal's end: EIO once every writer closed it
            pass
        finally:
            self._source.close()
