"""Expected failures are recorded by Dagster with their message and metadata and no stack;
unexpected ones keep their stack; the process's traceback limit is left as it was."""

import sys
import traceback
from collections.abc import Callable

import dagster as dg
import pytest

from amazoniax_dagster.jobs.channel_job import JobOutcome
from amazoniax_dagster.jobs.services import JobRequest
from assets.channel_files import job_failure
from assets.failures import ExpectedFailure


def step_failure_of(body: Callable[[], None]) -> dg.DagsterEvent:
    """Materialize an asset whose body is ``body``; the STEP_FAILURE event Dagster recorded."""

    @dg.asset
    def failing() -> None:
        body()

    result = dg.materialize([failing], raise_on_error=False)
    assert not result.success
    (event,) = [e for e in result.all_events if e.is_step_failure]
    return event


def outcome(error_class: str, text: str) -> JobOutcome:
    request = JobRequest(job_id="job-1", channel_id="ch-1")
    return JobOutcome(request, None, error_class, text, "s3://out/raw/ch-1/_logs/job-1.log")


@pytest.mark.parametrize(
    ("error_class", "text"),
    [
        ("config", "config error: cannot list s3://nope/: the bucket does not exist"),
        ("site_changed", "site_changed error: the site has probably changed"),
        ("validation_failed", "validation_failed error: 2 of 3 channels failed"),
    ],
)
def test_an_expected_job_failure_is_recorded_without_a_stack(error_class: str, text: str) -> None:
    def fail() -> None:
        raise job_failure(outcome(error_class, text))

    event = step_failure_of(fail)
    data = event.step_failure_data
    assert data.error is not None
    assert data.error.stack == []
    assert data.error.message.strip().endswith(text)
    assert data.user_failure_data is not None
    metadata = {k: v.value for k, v in data.user_failure_data.metadata.items()}
    assert metadata["error_class"] == error_class
    assert metadata["channel"] == "ch-1" and metadata["job_id"] == "job-1"
    assert metadata["job_log"] == "s3://out/raw/ch-1/_logs/job-1.log"
    assert not hasattr(sys, "tracebacklimit")


def test_an_unexpected_job_failure_keeps_its_stack() -> None:
    def fail() -> None:
        raise job_failure(outcome("internal", "unexpected error: KeyError: 'x'"))

    data = step_failure_of(fail).step_failure_data
    assert data.error is not None and data.error.stack
    assert any("in fail" in frame for frame in data.error.stack)


def test_a_bug_keeps_its_stack_after_an_expected_failure_in_the_same_process() -> None:
    def expected() -> None:
        raise ExpectedFailure("config error: no such bucket").without_stack()

    def bug() -> None:
        {}["missing"]  # noqa: B018

    assert step_failure_of(expected).step_failure_data.error.stack == []  # type: ignore[union-attr]
    data = step_failure_of(bug).step_failure_data
    assert data.error is not None and data.error.cause is not None
    assert "KeyError" in data.error.cause.message
    assert any("in bug" in frame for frame in data.error.cause.stack)


def test_the_traceback_limit_the_process_had_is_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "tracebacklimit", 7, raising=False)
    try:
        raise ExpectedFailure("bad config").without_stack()
    except ExpectedFailure as exc:
        formatted = traceback.TracebackException.from_exception(exc)
    assert list(formatted.stack) == []
    assert sys.tracebacklimit == 7
