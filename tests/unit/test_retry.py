import pytest

from amazoniax_dagster.core.errors import ConfigError, TransientError
from amazoniax_dagster.core.retry import RetryPolicy


def flaky(failures: list[Exception]):
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return "ok"

    return fn, calls


def test_transient_errors_are_retried_up_to_the_limit() -> None:
    fn, calls = flaky([TransientError("503"), TransientError("reset")])
    assert RetryPolicy(retries=3, delay_seconds=0).call(fn, what="x") == "ok"
    assert calls["n"] == 3


def test_the_last_transient_error_is_raised_when_retries_run_out() -> None:
    fn, calls = flaky([TransientError(f"503 #{i}") for i in range(5)])
    with pytest.raises(TransientError, match="503 #2"):
        RetryPolicy(retries=2, delay_seconds=0).call(fn, what="x")
    assert calls["n"] == 3


def test_config_errors_are_not_retried() -> None:
    fn, calls = flaky([ConfigError("bad password")])
    with pytest.raises(ConfigError):
        RetryPolicy(retries=3, delay_seconds=0).call(fn, what="x")
    assert calls["n"] == 1


def test_backoff_grows_and_retry_after_wins() -> None:
    waits: list[float] = []
    policy = RetryPolicy(retries=3, delay_seconds=1.0, max_delay_seconds=100)

    class State:
        def __init__(self, n: int, exc: Exception) -> None:
            self.attempt_number = n
            self.outcome = type("O", (), {"exception": lambda _self: exc})()

    for n in (1, 2, 3):
        waits.append(policy.wait_seconds(State(n, TransientError("x"))))  # type: ignore[arg-type]
    assert 1.0 <= waits[0] <= 2.0 and 2.0 <= waits[1] <= 3.0 and 4.0 <= waits[2] <= 5.0
    assert policy.wait_seconds(State(1, TransientError("429", retry_after=7))) == 7  # type: ignore[arg-type]


def test_a_first_time_success_makes_no_retry() -> None:
    fn, calls = flaky([])
    policy = RetryPolicy(retries=3, delay_seconds=0)
    assert policy.call(fn, what="x") == "ok"
    assert calls["n"] == 1 and policy.made.value == 0


def test_no_retries_means_one_call() -> None:
    fn, calls = flaky([TransientError("503"), TransientError("504")])
    policy = RetryPolicy(retries=0, delay_seconds=0)
    with pytest.raises(TransientError, match="503"):
        policy.call(fn, what="x")
    assert calls["n"] == 1 and policy.made.value == 0


def test_the_first_failure_is_logged_counted_and_waited_for_like_any_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The first attempt runs outside tenacity; its error must still decide the first wait
    # (here its Retry-After), count as a retry and be logged as attempt 1.
    seen: list[tuple[int, Exception | None]] = []

    class Recording(RetryPolicy):
        def wait_seconds(self, state):  # type: ignore[no-untyped-def]
            seen.append((state.attempt_number, state.outcome.exception()))
            return 0.0

    first, second = TransientError("429", retry_after=7), TransientError("503")
    fn, calls = flaky([first, second])
    policy = Recording(retries=3, delay_seconds=30)
    with caplog.at_level("WARNING", logger="amazoniax_dagster.core.retry"):
        assert policy.call(fn, what="download a.csv") == "ok"
    assert calls["n"] == 3 and policy.made.value == 2
    assert seen == [(1, first), (2, second)]
    assert [r.getMessage() for r in caplog.records] == [
        "download a.csv failed (attempt 1 of 4): 429; retrying",
        "download a.csv failed (attempt 2 of 4): 503; retrying",
    ]
