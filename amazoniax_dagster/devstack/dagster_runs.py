"""Ending the runs in flight when ``amazoniax dev`` stops, through the webserver's GraphQL API as
the UI's Terminate button does: each run is asked to stop, given a bounded time to reach
CANCELED, and what is left is then marked canceled ("force termination"), so no run stays
STARTED in storage after its processes are gone.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

#: the statuses of a run that is not over yet (Dagster's IN_PROGRESS_RUN_STATUSES)
IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING", "SUSPENDED")

#: the statuses from which Dagster terminates a run gently (CANCELABLE_RUN_STATUSES)
CANCELABLE = ("QUEUED", "STARTED")

#: how long the runs get to end on their own before they are marked canceled
RUNS_TIMEOUT_S = 10.0

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


class DagsterApiError(Exception):
    """The webserver could not be reached or answered with an error."""


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
    error: str = ""

    def summary(self) -> str:
        if self.error:
            return f"runs in flight were not ended: {self.error}"
        counts = Counter(status.lower() for status in self.statuses.values())
        parts = [f"{n} {status}" for status, n in sorted(counts.items())]
        forced = f" ({len(self.forced)} marked canceled after {RUNS_TIMEOUT_S:.0f} s)"
        plural = "" if len(self.statuses) == 1 else "s"
        return (
            f"ended {len(self.statuses)} run{plural} in flight: {', '.join(parts)}"
            f"{forced if self.forced else ''}"
        )


def end_runs_in_flight(
    webserver: DagsterWebserver,
    *,
    timeout: float = RUNS_TIMEOUT_S,
    hurry: threading.Event | None = None,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> EndedRuns:
    """Terminate every run in flight and wait until each has ended, at most ``timeout`` seconds
    (or until ``hurry`` is set); then mark the runs still going canceled.

    Runs that appear meanwhile (a queued run that was starting) are asked to stop as well.
    """
    ended = EndedRuns()
    asked: set[str] = set()
    deadline = clock() + timeout
    try:
        while True:
            going = {run.run_id: run for run in webserver.runs()}
            left = {i for i, s in ended.statuses.items() if s in IN_FLIGHT and i not in going}
            ended.statuses.update(_final_statuses(webserver, left))
            for run in going.values():
                ended.statuses[run.run_id] = run.status
            if not going:
                return ended
            ask = [i for i, r in going.items() if r.status in CANCELABLE and i not in asked]
            webserver.terminate(ask)
            asked.update(ask)
            if clock() >= deadline or (hurry is not None and hurry.is_set()):
                break
            if hurry is not None:
                hurry.wait(interval)
            else:
                time.sleep(interval)
        ended.forced = sorted(going)
        webserver.terminate(ended.forced, force=True)
        ended.statuses.update(_final_statuses(webserver, set(ended.statuses)))
    except DagsterApiError as exc:
        ended.error = str(exc)
    return ended


def _final_statuses(webserver: DagsterWebserver, run_ids: set[str]) -> dict[str, str]:
    if not run_ids:
        return {}
    return {run.run_id: run.status for run in webserver.runs(statuses=(), run_ids=run_ids)}
