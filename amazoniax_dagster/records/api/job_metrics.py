"""Job durations for ``/metrics``, read from ``job_runs``: a Prometheus histogram per source
type and final status, and the age of the oldest queued job.

The API keeps no state between scrapes: every scrape counts the finished jobs in the DB, so
the histogram is cumulative over the jobs the DB holds, the same on every API replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from amazoniax_dagster.db.pg import Database

# Upper bounds in seconds: a quick S3 sync to a long generation or a big FTP transfer.
BOUNDS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)

_BUCKETS = ", ".join(f"count(*) FILTER (WHERE seconds <= {bound:g})" for bound in BOUNDS)
DURATIONS = f"""
SELECT source_type, status, count(*), coalesce(sum(seconds), 0), {_BUCKETS}
FROM (SELECT source_type, status, extract(epoch FROM finished_at - started_at) AS seconds
      FROM job_runs
      WHERE started_at IS NOT NULL AND finished_at IS NOT NULL AND finished_at >= started_at) d
GROUP BY source_type, status ORDER BY source_type, status
"""
OLDEST_QUEUED = (
    "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM job_runs"
    " WHERE status = 'queued'"
)


@dataclass(frozen=True)
class Durations:
    source_type: str
    status: str
    count: int
    total_seconds: float
    cumulative: tuple[int, ...]  # jobs at or under each of BOUNDS


def job_durations(db: Database) -> tuple[list[Durations], float]:
    """Durations of finished jobs by (source type, status), and the oldest queued job's age."""
    with db.transaction() as sql:
        rows = sql.all(DURATIONS)
        oldest = sql.scalar(OLDEST_QUEUED)
    found = [
        Durations(row[0], row[1], int(row[2]), float(row[3]), tuple(int(n) for n in row[4:]))
        for row in rows
    ]
    return found, float(oldest or 0)


class JobDurationCollector(Collector):
    """Read on every scrape (register it in a per-request registry)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[Metric]:
        durations, oldest = job_durations(self._db)
        histogram = HistogramMetricFamily(
            "amazoniax_job_duration_seconds",
            "Run time of finished jobs (started to finished), by source type and status",
            labels=["source_type", "status"],
        )
        for d in durations:
            buckets = [
                (str(float(bound)), n) for bound, n in zip(BOUNDS, d.cumulative, strict=True)
            ]
            histogram.add_metric(
                [d.source_type, d.status], [*buckets, ("+Inf", d.count)], d.total_seconds
            )
        yield histogram
        yield GaugeMetricFamily(
            "amazoniax_oldest_queued_job_age_seconds",
            "How long the oldest queued job has waited (0 when none waits)",
            value=oldest,
        )


__all__ = ["BOUNDS", "Durations", "JobDurationCollector", "job_durations"]
