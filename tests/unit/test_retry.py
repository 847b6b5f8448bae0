import pytest

from amazoniax_dagster.errors import ConfigError, TransientError
from amazoniax_dagster.retry import RetryPolicy


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
