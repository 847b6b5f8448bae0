from datetime import UTC, datetime

import pytest

from amazoniax_dagster.core.cadence import ScheduledChannel, check_schedule, due_jobs, last_tick
from amazoniax_dagster.core.errors import ConfigError, MessageError
from amazoniax_dagster.core.messages import SourceType, parse_source_config


def t(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 22, hh, mm, ss, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "at", "tick"),
    [
        ("*/30 * * * *", t(10, 45), t(10, 30)),
        ("*/30 * * * *", t(10, 30), t(10, 30)),  # exactly on a tick
        ("*/30 * * * *", t(10, 30, 15), t(10, 30)),  # within the tick's minute
        ("*/30 * * * *", t(10, 29, 59), t(10, 0)),
        ("0 6 * * *", t(5, 0), datetime(2026, 11, 21, 6, 0, tzinfo=UTC)),
    ],
)
def test_last_tick(expression: str, at: datetime, tick: datetime) -> None:
    assert last_tick(expression, at) == tick


CHANNELS = [
    ScheduledChannel("every-30", "s3", "*/30 * * * *"),
    ScheduledChannel("daily", "ftp", "0 6 * * *"),
]


def test_due_jobs_in_a_window() -> None:
    due = due_jobs(CHANNELS, since=t(10, 29), until=t(10, 31))
    assert [(j.channel_id, j.tick, j.job_id) for j in due] == [
        ("every-30", t(10, 30), "sched-every-30-20261122T1030")
    ]
    assert due_jobs(CHANNELS, since=t(10, 31), until=t(10, 59)) == []


def test_missed_ticks_run_once() -> None:
    due = due_jobs(CHANNELS, since=t(1, 0), until=t(10, 59))
    assert [(j.channel_id, j.tick) for j in due] == [("every-30", t(10, 30)), ("daily", t(6, 0))]


@pytest.mark.parametrize("bad", ["every 30 minutes", "*/30 * * *", "61 * * * *", "* * * * * *"])
def test_bad_schedules_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="5-field cron"):
        check_schedule(bad)
    with pytest.raises(MessageError, match="schedule"):
        parse_source_config(SourceType.S3, {"bucket": "abc", "schedule": bad})


def test_a_good_schedule_is_kept_in_the_config() -> None:
    cfg = parse_source_config(SourceType.FTP, {"host": "h", "schedule": "*/30 * * * *"})
    assert cfg.schedule == "*/30 * * * *"
