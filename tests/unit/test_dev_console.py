"""`amazoniax dev` relays `dagster dev`'s output as it comes; once the stop began, one line per
run (its run-level event) and none of the stack traces or step events of interrupted runs."""

from __future__ import annotations

import io
import threading

import pytest

from amazoniax_dagster.devstack.console import OutputRelay, output_channel, shown_while_stopping

RUN = (
    "2026-12-05 18:42:31 +0000 - dagster - ERROR - channel_files_job"
    " - 1d1ab8a2-1e51-4c46-867e-ba64963e49e2 - 24295"
)
CANCELED = f'{RUN} - RUN_CANCELED - Execution of run for "channel_files_job" canceled.\n'
STEP_FAILED = f'{RUN} - channel_files - STEP_FAILURE - Execution of step "channel_files" failed.\n'
STACK = (
    "\n"
    "dagster._core.errors.DagsterExecutionInterruptedError\n"
    "\n"
    "Stack Trace:\n"
    '  File "/x/dagster/_core/execution/api.py", line 742, in job_execution_iterator\n'
    "    for event in job_context.executor.execute(job_context, execution_plan):\n"
)
DAEMON = (
    "\x1b[32m2026-12-05 18:42:32 +0000\x1b[0m - dagster.daemon - \x1b[34mINFO\x1b[0m"
    " - Shutting down\n"
)
TRACEBACK = (
    'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\nKeyboardInterrupt\n'
)


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (CANCELED, True),  # how the run ended: its one line
        (f"{RUN} - RUN_FAILURE - Execution of run failed.\n", True),
        (STEP_FAILED, False),  # the step's failure repeats the run's
        (f"{RUN} - channel_files - job j1: 3 files listed\n", False),
        (DAEMON, True),  # a Dagster process's own record, colored
        ("dagster._core.errors.DagsterExecutionInterruptedError\n", False),
        ("Stack Trace:\n", False),
        ('  File "x.py", line 1, in <module>\n', False),
        ("Traceback (most recent call last):\n", False),
        ("\n", False),
    ],
)
def test_what_shows_once_the_stop_began(line: str, shown: bool) -> None:
    assert shown_while_stopping(line.encode()) is shown


def _relay(before: str, after: str, *, terminal: bool) -> tuple[str, int]:
    """Relay ``before``, begin the stop, relay ``after``: what came out, how much was left out."""
    source, write_fd = output_channel(terminal)
    sink = io.BytesIO()

    def relayed() -> str:  # a terminal ends its lines with CR LF
        return sink.getvalue().decode().replace("\r\n", "\n")

    relay = OutputRelay(source, sink)
    relay.start()
    with open(write_fd, "wb", buffering=0) as writer:
        writer.write(before.encode())
        while relayed() != before:  # relayed, before the stop begins
            threading.Event().wait(0.01)
        relay.stopping()
        writer.write(after.encode())
    relay.join(timeout=10)
    return relayed(), relay.left_out


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "pseudo-terminal"])
def test_everything_passes_while_dagster_runs_and_one_line_per_run_once_stopping(
    terminal: bool,
) -> None:
    before = STEP_FAILED + STACK + TRACEBACK
    after = STEP_FAILED + STACK + CANCELED + STACK + DAEMON + TRACEBACK
    out, left_out = _relay(before, after, terminal=terminal)
    assert out == before + CANCELED + DAEMON
    assert left_out == after.count("\n") - 2
    assert "Traceback" not in out[len(before) :] and "Stack Trace" not in out[len(before) :]
