"""`amazoniax dev` stops `dagster dev` and everything in its process group before the stack.

Real processes stand in for `dagster dev` and a code server that its webserver restarts while
shutting down (what left code servers behind, logging failed connections to the stopped
PostgreSQL, until their heartbeat timeout).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

from amazoniax_dagster.devstack.session import _daemon_pids, _kill, _stop_process_group

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


@contextmanager
def _group(leader: str, child: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start ``leader`` (with ``child`` and a marker as its arguments) as a process group leader,
    once it is ready; kill whatever of it is left at the end."""
    marker = f"amazoniax-dev-stop-test-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [sys.executable, "-c", leader, child, marker],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        yield proc, marker
    finally:
        for process in _marked(marker):
            process.kill()


def test_stopping_leaves_no_process_of_the_group_even_one_restarted_meanwhile() -> None:
    with _group(_LEADER, _RESTARTING_CHILD) as (proc, marker):
        assert len(_marked(marker)) == 2  # the leader and its child
        _stop_process_group(proc)
        assert proc.returncode is not None
        assert _marked(marker) == []


# Waits as `amazoniax dev` does, then takes a second to stop; prints how it ended.
_WAITER = """
import time
from amazoniax_dagster.devstack.session import _wait_for_signal
print("ready", flush=True)
_wait_for_signal()
time.sleep(1.0)
print("stopped in order", flush=True)
"""


# Waits as `amazoniax dev` does, with a `hurry` flag; reports it once the stop is over.
_HURRIED_WAITER = """
import threading, time
from amazoniax_dagster.devstack.session import _wait_for_signal
hurry = threading.Event()
print("ready", flush=True)
_wait_for_signal(hurry=hurry)
hurry.wait(2.0)
print("hurried" if hurry.is_set() else "in order", flush=True)
"""


def _interrupted_twice(waiter: str, pause: float) -> list[bytes]:
    """Run ``waiter``, interrupt it, and again ``pause`` seconds after it began to stop."""
    proc = subprocess.Popen(
        [sys.executable, "-c", waiter], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    time.sleep(0.3)  # inside the wait
    proc.send_signal(signal.SIGINT)
    assert proc.stdout.readline() == b"stopping ...\n"
    time.sleep(pause)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    return out.splitlines()


def test_a_second_interrupt_does_not_cut_the_stop_short() -> None:
    # `uv run` forwards the Ctrl-C the terminal already sent to its whole group: a second
    # SIGINT follows the first (two sent at once would reach Python as one).
    assert _interrupted_twice(_WAITER, pause=0.0) == [b"stopped in order"]


def test_the_forwarded_copy_of_a_ctrl_c_does_not_hurry_the_stop() -> None:
    assert _interrupted_twice(_HURRIED_WAITER, pause=0.0) == [b"in order"]


def test_a_second_ctrl_c_of_the_person_hurries_the_stop() -> None:
    assert _interrupted_twice(_HURRIED_WAITER, pause=1.5) == [b"stopping at once ...", b"hurried"]


# "dagster dev" whose child ignores SIGTERM (a run stuck in a C call, say).
_STUBBORN_CHILD = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""

_STUBBORN_LEADER = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE)
child.stdout.readline()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""


def test_a_hurried_stop_kills_what_ignores_sigterm_without_waiting_for_it() -> None:
    with _group(_STUBBORN_LEADER, _STUBBORN_CHILD) as (proc, marker):
        assert len(_marked(marker)) == 2
        hurry = threading.Event()
        hurry.set()
        # Without `hurry` this would wait for the leader and then the child, 600 s each.
        _stop_process_group(proc, grace=600, leftovers=600, hurry=hurry)
        assert proc.returncode == -signal.SIGKILL
        assert _marked(marker) == []


# "dagster dev" with a "daemon" child, named as dagster dev names it.
_DAEMON = "import sys, time; print('ready', flush=True); time.sleep(600)"

_DEV_WITH_DAEMON = """
import signal, subprocess, sys, time
daemon = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1], "-m", "dagster._daemon", "run", sys.argv[2]],
    stdout=subprocess.PIPE,
)
daemon.stdout.readline()
other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", sys.argv[2]])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
time.sleep(600)
"""


def test_the_daemon_is_told_apart_and_killed_before_the_group_stops() -> None:
    with _group(_DEV_WITH_DAEMON, _DAEMON) as (proc, marker):
        daemons = _daemon_pids(proc.pid)
        assert len(daemons) == 1
        assert "dagster._daemon" in psutil.Process(daemons[0]).cmdline()
        assert len(_marked(marker)) == 3  # dagster dev, the daemon, another child
        _kill(daemons)
        _stop_process_group(proc)
        assert _marked(marker) == []
