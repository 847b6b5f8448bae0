"""Ending the runs in flight when ``amazoniax dev`` stops, through the webserver's GraphQL API as
the UI does: the sensors and schedules that start runs are stopped; each run is terminated,
given a bounded time to reach CANCELED, and what is left is then marked canceled ("force
termination"), so no run stays STARTED in storage after its processes are gone; and the run
status sensors get one evaluation after that, so that each canceled run is reported (its job
leaves "running" in the fetcher DB, its uploads are cleaned up).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

#: the statuses of a run that is not over yet (Dagster's IN_PROGRESS_RUN_STATUSES)
IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING", "SUSPENDED")

#: the statuses from which Dagster terminates a run gently (CANCELABLE_RUN_STATUSES)
CANCELABLE = ("QUEUED", "STARTED")

#: how long the runs get to end on their own before they are marked canceled
RUNS_TIMEOUT_S = 10.0

#: how long ending the runs takes at most, their reports included
STOP_BUDGET_S = 15.0

_RUNS_QUERY = """
query AmazoniaxRunsInFlight($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId jobName status } }
    ... on PythonError { message }
    ... on InvalidPipelineRunsFilterError { message }
  }
}
"""

_TERMINATE = """
mutation AmazoniaxTerminateRuns($runIds: [String!]!, $policy: TerminateRunPolicy) {
  terminateRuns(runIds: $runIds, terminatePolicy: $policy) {
    __typename
    ... on TerminateRunsResult {
      terminateRunResults {
        __typename
        ... on TerminateRunFailure { message }
        ... on PythonError { message }
      }
    }
    ... on PythonError { message }
  }
}
"""


_INSTIGATORS = """
query AmazoniaxInstigators {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        sensors {
          id name sensorType
          sensorState { status ticks(limit: 1) { status timestamp } }
        }
        schedules { id name scheduleState { status } }
      }
    }
    ... on PythonError { message }
  }
}
"""

_STOP_SENSOR = """
mutation AmazoniaxStopSensor($id: String) { stopSensor(id: $id) { __typename } }
"""

_STOP_SCHEDULE = """
mutation AmazoniaxStopSchedule($id: String) { stopRunningSchedule(id: $id) { __typename } }
"""


class DagsterApiError(Exception):
    """The webserver could not be reached or answered with an error."""


@dataclass(frozen=True)
class Instigator:
    """A running sensor or schedule."""

    id: str
    name: str
    kind: str  # a sensor's type (STANDARD, RUN_STATUS, ...), or SCHEDULE
    #: when its latest finished tick began (None: none yet, or one is in progress)
    last_tick: float | None = None


@dataclass(frozen=True)
class Run:
    run_id: str
    job_name: str
    status: str


class DagsterWebserver:
    """The few GraphQL calls the stop needs, against ``dagster-webserver`` at ``url``."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self._client = httpx.Client(base_url=url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def _graphql(self, document: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        try:
            body_in = {"query": document, "variables": variables}
            response = self._client.post("/graphql", json=body_in)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DagsterApiError(f"the Dagster webserver did not answer: {exc}") from exc
        if body.get("errors"):
            raise DagsterApiError(f"the Dagster webserver refused a query: {body['errors'][0]}")
        data: dict[str, Any] = body["data"]
        return data

    def runs(self, statuses: Iterable[str] = IN_FLIGHT, run_ids: Iterable[str] = ()) -> list[Run]:
        run_filter: dict[str, Any] = {"statuses": list(statuses)}
        if ids := list(run_ids):
            run_filter["runIds"] = ids
        result = self._graphql(_RUNS_QUERY, {"filter": run_filter})["runsOrError"]
        if result["__typename"] != "Runs":
            raise DagsterApiError(f"the Dagster webserver could not list runs: {result}")
        return [Run(r["runId"], r["jobName"], r["status"]) for r in result["results"]]

    def instigators(self) -> list[Instigator]:
        """The sensors and schedules that are running."""
        result = self._graphql(_INSTIGATORS, {})["repositoriesOrError"]
        if result["__typename"] != "RepositoryConnection":
            raise DagsterApiError(f"the Dagster webserver could not list sensors: {result}")
        running = []
        for repository in result["nodes"]:
            for sensor in repository["sensors"]:
                state = sensor["sensorState"]
                if state["status"] == "RUNNING":
                    ticks = [t for t in state["ticks"] if t["status"] != "STARTED"]
                    last = ticks[0]["timestamp"] if ticks else None
                    running.append(
                        Instigator(sensor["id"], sensor["name"], sensor["sensorType"], last)
                    )
            for schedule in repository["schedules"]:
                if schedule["scheduleState"]["status"] == "RUNNING":
                    running.append(Instigator(schedule["id"], schedule["name"], "SCHEDULE"))
        return running

    def stop(self, instigator: Instigator) -> None:
        """Stop a sensor or schedule (for this instance: ``amazoniax dev`` starts a new one)."""
        document = _STOP_SCHEDULE if instigator.kind == "SCHEDULE" else _STOP_SENSOR
        self._graphql(document, {"id": instigator.id})

    def terminate(self, run_ids: list[str], *, force: bool = False) -> None:
        """Ask each run to stop (``force``: also mark it canceled at once)."""
        if not run_ids:
            return
        policy = "MARK_AS_CANCELED_IMMEDIATELY" if force else "SAFE_TERMINATE"
        result = self._graphql(_TERMINATE, {"runIds": run_ids, "policy": policy})["terminateRuns"]
        if result["__typename"] != "TerminateRunsResult":
            raise DagsterApiError(f"the Dagster webserver could not terminate runs: {result}")


@dataclass
class EndedRuns:
    """What became of the runs that were in flight when the stop began."""

    statuses: dict[str, str] = field(default_factory=dict)  # run id -> final status
    forced: list[str] = field(default_factory=list)  # marked canceled after the timeout
    stopped: list[str] = field(default_factory=list)  # the sensors and schedules stopped
    reported: bool = True  # the run status sensors evaluated after the runs had ended
    hurried: bool = False  # a second Ctrl-C cut the waits short
    error: str = ""

    def summary(self) -> str:
        if self.error:
            return f"runs in flight were not ended: {self.error}"
        counts = Counter(status.lower() for status in self.statuses.values())
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        plural = "" if len(self.statuses) == 1 else "s"
        line = f"ended {len(self.statuses)} run{plural} in flight: {parts}"
        if self.forced:
            line += f" ({len(self.forced)} marked canceled without having ended)"
        if not self.reported:
            line += "; the run status sensors did not report them" + (
                " (stopped at once)" if self.hurried else f" within {STOP_BUDGET_S:.0f} s"
            )
        return line


def end_runs_in_flight(
    webserver: DagsterWebserver,
    *,
    timeout: float = RUNS_TIMEOUT_S,
    budget: float = STOP_BUDGET_S,
    hurry: threading.Event | None = None,
    interval: float = 0.5,
) -> EndedRuns:
    """Stop what starts runs, terminate every run in flight and wait until each has ended, at
    most ``timeout`` seconds; mark the runs still going canceled; then wait until each run
    status sensor has evaluated once since, until ``budget`` seconds have passed in all.
    Setting ``hurry`` cuts both waits short.
    """
    began = time.monotonic()
    ended = EndedRuns()
    hurry = hurry or threading.Event()
    try:
        reporters = []
        for instigator in webserver.instigators():
            if instigator.kind == "RUN_STATUS":
                reporters.append(instigator.name)
            else:
                webserver.stop(instigator)
                ended.stopped.append(instigator.name)
        _terminate(webserver, ended, timeout, hurry, interval)
        if ended.statuses and reporters:
            left = began + budget - time.monotonic()
            ended.reported = _wait_for_reports(
                webserver, reporters, time.time(), left, hurry, interval
            )
    except DagsterApiError as exc:
        ended.error = str(exc)
    ended.hurried = hurry.is_set()
    return ended


def _terminate(
    webserver: DagsterWebserver,
    ended: EndedRuns,
    timeout: float,
    hurry: threading.Event,
    interval: float,
) -> None:
    """Terminate the runs in flight, and those that appear meanwhile (a queued run that was
    starting), until none is left or the time is up; then mark what is left canceled."""
    asked: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        going = {run.run_id: run for run in webserver.runs()}
        left = {i for i, s in ended.statuses.items() if s in IN_FLIGHT and i not in going}
        ended.statuses.update(_final_statuses(webserver, left))
        ended.statuses.update({run.run_id: run.status for run in going.values()})
        if not going:
            return
        ask = [i for i, r in going.items() if r.status in CANCELABLE and i not in asked]
        webserver.terminate(ask)
        asked.update(ask)
        if time.monotonic() >= deadline or hurry.is_set():
            break
        hurry.wait(interval)
    ended.forced = sorted(going)
    webserver.terminate(ended.forced, force=True)
    ended.statuses.update(_final_statuses(webserver, set(ended.forced)))


def _wait_for_reports(
    webserver: DagsterWebserver,
    reporters: list[str],
    since: float,
    timeout: float,
    hurry: threading.Event,
    interval: float,
) -> bool:
    """Whether each of the ``reporters`` (run status sensors) finished a tick that began after
    ``since`` (a Unix time), within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ticks = {i.name: i.last_tick for i in webserver.instigators() if i.name in reporters}
        if all(tick is not None and tick > since for tick in ticks.values()):
            return True
        if time.monotonic() >= deadline or hurry.is_set():
            return False
        hurry.wait(interval)


def _final_statuses(webserver: DagsterWebserver, run_ids: set[str]) -> dict[str, str]:
    if not run_ids:
        return {}
    return {run.run_id: run.status for run in webserver.runs(statuses=(), run_ids=run_ids)}
