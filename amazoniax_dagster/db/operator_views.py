"""The fetcher DB's read-only summaries for operators (``amazoniax status``, the read API) and
the dead-letter count; mixed into ``FetcherDB``."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from amazoniax_dagster.db.rows import ChannelHost, ChannelSummary, DeadLetterRow, JobFailure

if TYPE_CHECKING:
    from amazoniax_dagster.db.pg import Sql


class OperatorViewsMixin:
    """Summaries and dead letters; ``FetcherDB`` provides the transaction."""

    if TYPE_CHECKING:

        def _transaction(self, what: str) -> AbstractContextManager[Sql]: ...

    def list_channels(self) -> list[ChannelSummary]:
        """Every stored channel, by id, without its config."""
        with self._transaction("list channels") as s:
            rows = s.all(
                "SELECT channel_id, source_type, created_at, updated_at FROM channels"
                " ORDER BY channel_id"
            )
        return [ChannelSummary(*row) for row in rows]

    def channel_source_types(self, channel_ids: Iterable[str]) -> dict[str, str]:
        """channel_id -> source_type for the given channels that are stored."""
        ids = sorted(set(channel_ids))
        if not ids:
            return {}
        with self._transaction("read channel source types") as s:
            rows = s.all(
                "SELECT channel_id, source_type FROM channels WHERE channel_id = ANY(%s)", (ids,)
            )
        return dict(rows)

    def channel_hosts(self) -> list[ChannelHost]:
        """The server address of every stored FTP/FTPS/SFTP channel (never its secrets)."""
        with self._transaction("list channel hosts") as s:
            rows = s.all(
                "SELECT channel_id, config_json FROM channels WHERE source_type = 'ftp'"
                " ORDER BY channel_id"
            )
        hosts = []
        for channel_id, config in rows:
            host = config.get("host") if isinstance(config, dict) else None
            if not isinstance(host, str) or not host:
                continue
            port = config.get("port")
            protocol = config.get("protocol") or "ftp"
            hosts.append(
                ChannelHost(
                    channel_id,
                    host,
                    int(port) if isinstance(port, int | str) and str(port).isdigit() else None,
                    str(protocol),
                )
            )
        return hosts

    def job_status_counts(self) -> dict[str, int]:
        """How many jobs are in each status (queued, running, success, failed, ...)."""
        with self._transaction("count jobs") as s:
            rows = s.all("SELECT status, count(*) FROM job_runs GROUP BY status")
        return {status: int(count) for status, count in rows}

    def job_statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        """job_id -> status for the given jobs that the fetcher knows."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        with self._transaction("read job statuses") as s:
            rows = s.all("SELECT job_id, status FROM job_runs WHERE job_id = ANY(%s)", (ids,))
        return dict(rows)

    def recent_failures(self, limit: int = 10) -> list[JobFailure]:
        """The most recent jobs that did not succeed (failed, canceled, needing review)."""
        with self._transaction("read recent failures") as s:
            rows = s.all(
                "SELECT job_id, channel_id, status, message,"
                " coalesce(finished_at, started_at, created_at) AS at FROM job_runs"
                " WHERE status IN ('failed', 'canceled', 'requires_human_review')"
                " ORDER BY at DESC, id DESC LIMIT %s",
                (limit,),
            )
        return [JobFailure(*row) for row in rows]

    def record_dead_letter(
        self,
        *,
        job_id: str | None,
        channel_id: str | None,
        error_class: str,
        reason: str,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """Count a refused message (its reason already redacted)."""
        with self._transaction("record a dead letter") as s:
            s.execute(
                "INSERT INTO dead_letters (job_id, channel_id, error_class, reason, topic,"
                ' partition, "offset") VALUES (%s, %s, %s, %s, %s, %s, %s)',
                (
                    job_id,
                    channel_id,
                    error_class,
                    reason[:2000].replace("\x00", "\ufffd"),
                    topic,
                    partition,
                    offset,
                ),  # fmt: skip
            )

    def recent_dead_letters(self, limit: int = 10) -> tuple[int, list[DeadLetterRow]]:
        """How many messages were dead-lettered in all, and the latest ``limit`` of them."""
        with self._transaction("read dead letters") as s:
            total = int(s.scalar("SELECT count(*) FROM dead_letters") or 0)
            rows = s.all(
                "SELECT job_id, channel_id, error_class, reason, created_at FROM dead_letters"
                " ORDER BY created_at DESC, id DESC LIMIT %s",
                (limit,),
            )
        return total, [DeadLetterRow(*row) for row in rows]
