"""`amazoniax dev` stops `dagster dev` and everything in its process group before the stack.

Real processes stand in for `dagster dev` and a code server that its webserver restarts while
shutting down (what left code servers behind, logging failed connections to the stopped
PostgreSQL, until their heartbeat timeout).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import psutil

from amazoniax_dagster.devstack.session import _stop_process_group

# A "code server" that, told to stop, starts a replacement of itself (as dagster dev's proxy
# server manager does during its shutdown) and exits.
_RESTARTING_CHILD = """
import signal, subprocess, sys, time
def restart(*_):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *sys.argv[1:]])
    sys.exit(0)
signal.signal(signal.SIGTERM, restart)
print("ready", flush=True)
time.sleep(120)
"""

# "dagster dev": starts the child, waits until it is ready, exits at once on SIGTERM.
_LEADER = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE)
child.stdout.readline()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
time.sleep(120)
"""


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if marker in (process.info["cmdline"] or []) and (
            process.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(process)
    return found


def test_stopping_leaves_no_process_of_the_group_even_one_restarted_meanwhile() -> None:
    marker = f"amazoniax-dev-stop-test-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _LEADER, _RESTARTING_CHILD, marker],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert len(_marked(marker)) == 2  # the leader and its child
        _stop_process_group(proc)
        assert proc.returncode is not None
        assert _marked(marker) == []
    finally:
        for process in _marked(marker):
            process.kill()


# Waits as `amazoniax dev` does, then takes a second to stop; prints how it ended.
_WAITER = """
import time
from amazoniax_dagster.devstack.session import _wait_for_signal
print("ready", flush=True)
_wait_for_signal()
time.sleep(1.0)
print("stopped in order", flush=True)
"""


def test_a_second_interrupt_does_not_cut_the_stop_short() -> None:
    # `uv run` forwards the Ctrl-C the terminal already sent to its whole group: a second
    # SIGINT follows the first (two sent at once would reach Python as one).
    proc = subprocess.Popen(
        [sys.executable, "-c", _WAITER], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    time.sleep(0.3)  # inside the wait
    proc.send_signal(signal.SIGINT)
    assert proc.stdout.readline() == b"stopping ...\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert (out, proc.returncode) == (b"stopped in order\n", 0), err.decode()
