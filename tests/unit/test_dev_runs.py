"""How `amazoniax dev` ends the runs in flight (``end_runs_in_flight``): the decisions of the loop,
against a scripted webserver. The real webserver, daemon and run workers are in
tests/integration/test_dev.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from amazoniax_dagster.devstack.dagster_runs import (
    IN_FLIGHT,
    EndedRuns,
    Instigator,
    Run,
    end_runs_in_flight,
)


class ScriptedWebserver:
    """Runs that end when asked (unless ``stuck``), and run status sensors that tick when
    ``reporting``; records what it was asked to do."""

    def __init__(self, runs: dict[str, str], *, stuck: bool = False, reporting: bool = True):
        self.statuses = dict(runs)
        self.stuck = stuck
        self.reporting = reporting
        self.asked: list[tuple[tuple[str, ...], bool]] = []
        self.stopped: list[str] = []

    def instigators(self) -> list[Instigator]:
        tick = time.time() if self.reporting else None
        running = [
            Instigator("1", "kafka_fetcher_sensor", "STANDARD"),
            Instigator("2", "status_on_cancel", "RUN_STATUS", tick),
            Instigator("3", "nightly", "SCHEDULE"),
        ]
        return [i for i in running if i.name not in self.stopped]

    def stop(self, instigator: Instigator) -> None:
        self.stopped.append(instigator.name)

    def runs(self, statuses: Iterable[str] = IN_FLIGHT, run_ids: Iterable[str] = ()) -> list[Run]:
        wanted, ids = set(statuses), list(run_ids) or list(self.statuses)
        return [
            Run(i, "channel_files_job", self.statuses[i])
            for i in ids
            if not wanted or self.statuses[i] in wanted
        ]

    def terminate(self, run_ids: list[str], *, force: bool = False) -> None:
        if run_ids:
            self.asked.append((tuple(run_ids), force))
        for run_id in run_ids:
            if force or not self.stuck:
                self.statuses[run_id] = "CANCELED"


def _end(webserver: ScriptedWebserver, **kwargs: float) -> EndedRuns:
    return end_runs_in_flight(webserver, interval=0.01, **kwargs)


def test_runs_asked_to_stop_end_canceled_and_only_run_starters_are_stopped() -> None:
    webserver = ScriptedWebserver({"a": "STARTED", "b": "QUEUED", "c": "SUCCESS"})
    ended = _end(webserver)
    assert webserver.stopped == ["kafka_fetcher_sensor", "nightly"]  # not the status sensor
    assert webserver.asked == [(("a", "b"), False)]  # once each, gently
    assert ended.statuses == {"a": "CANCELED", "b": "CANCELED"}
    assert (ended.forced, ended.reported) == ([], True)
    assert ended.summary() == "ended 2 runs in flight: 2 canceled"


def test_a_run_that_is_not_cancelable_yet_is_asked_once_it_started() -> None:
    webserver = ScriptedWebserver({"a": "STARTING"})
    starts = threading.Timer(0.05, lambda: webserver.statuses.update(a="STARTED"))
    starts.start()
    ended = _end(webserver)
    starts.join()
    assert webserver.asked == [(("a",), False)]
    assert ended.statuses == {"a": "CANCELED"}


def test_runs_that_do_not_end_in_time_are_marked_canceled() -> None:
    webserver = ScriptedWebserver({"a": "STARTED"}, stuck=True)
    ended = _end(webserver, timeout=0.05)
    assert webserver.asked == [(("a",), False), (("a",), True)]
    assert (ended.statuses, ended.forced) == ({"a": "CANCELED"}, ["a"])
    assert ended.summary() == (
        "ended 1 run in flight: 1 canceled (1 marked canceled without having ended)"
    )


def test_a_second_ctrl_c_marks_them_canceled_without_waiting() -> None:
    webserver = ScriptedWebserver({"a": "STARTED"}, stuck=True, reporting=False)
    hurry = threading.Event()
    hurry.set()
    ended = end_runs_in_flight(webserver, timeout=600, budget=600, hurry=hurry)
    assert ended.forced == ["a"]
    assert ended.summary() == (
        "ended 1 run in flight: 1 canceled (1 marked canceled without having ended)"
        "; the run status sensors did not report them (stopped at once)"
    )


def test_reports_not_seen_within_the_budget_are_said_so() -> None:
    webserver = ScriptedWebserver({"a": "STARTED"}, reporting=False)
    ended = _end(webserver, budget=0.1)
    assert ended.reported is False
    assert ended.summary().endswith("; the run status sensors did not report them within 15 s")


def test_nothing_in_flight_waits_for_nothing() -> None:
    webserver = ScriptedWebserver({"c": "SUCCESS"}, reporting=False)
    ended = _end(webserver, budget=600)
    assert (ended.statuses, webserver.asked, ended.reported) == ({}, [], True)
