"""Channels that fetch on a cadence of their own, without Kafka messages.

A channel config may carry ``schedule``: a cron expression in UTC (``*/30 * * * *`` = every 30
minutes). Each cron tick that passed since the last evaluation becomes one job with a
deterministic job_id, so a tick evaluated twice never runs twice. Ticks missed while the
product was down are not replayed one by one: a channel that missed several ticks runs once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from amazoniax_dagster.core.errors import ConfigError


@dataclass(frozen=True)
class ScheduledChannel:
    channel_id: str
    source_type: str
    schedule: str


@dataclass(frozen=True)
class DueJob:
    channel_id: str
    source_type: str
    tick: datetime

    @property
    def job_id(self) -> str:
        return f"sched-{self.channel_id}-{self.tick.strftime('%Y%m%dT%H%M')}"


def check_schedule(expression: str) -> str:
    """The expression, or ConfigError saying why it is not a cron schedule."""
    if not croniter.is_valid(expression) or len(expression.split()) != 5:
        raise ConfigError(
            f"schedule {expression!r} is not a 5-field cron expression "
            "(minute hour day month weekday, in UTC; e.g. '*/30 * * * *')"
        )
    return expression


def last_tick(expression: str, at: datetime) -> datetime:
    """The latest tick of ``expression`` at or before ``at`` (UTC)."""
    itr = croniter(expression, at.astimezone(UTC))
    if croniter.match(expression, at.astimezone(UTC)) and at.second == 0:
        return at.astimezone(UTC).replace(microsecond=0)
    tick: datetime = itr.get_prev(datetime)
    return tick.astimezone(UTC)


def due_jobs(channels: list[ScheduledChannel], *, since: datetime, until: datetime) -> list[DueJob]:
    """One job per channel whose schedule ticked in (since, until]; at most one per channel."""
    jobs = []
    for channel in channels:
        tick = last_tick(channel.schedule, until)
        if since < tick <= until:
            jobs.append(DueJob(channel.channel_id, channel.source_type, tick))
    return jobs
