"""Channel checkpoints (``channel_checkpoints``): the incremental cursor each channel's next
job starts after; mixed into ``FetcherDB``. A job reads it when it starts and writes it only
after it has succeeded, so a failed or killed job leaves it where it was."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from amazoniax_dagster.core.checkpoints import Checkpoint

if TYPE_CHECKING:
    from amazoniax_dagster.db.pg import Sql


class CheckpointsMixin:
    """Read, advance and reset checkpoints; ``FetcherDB`` provides the transaction."""

    if TYPE_CHECKING:

        def _transaction(self, what: str) -> AbstractContextManager[Sql]: ...

    def checkpoint(self, channel_id: str) -> Checkpoint | None:
        with self._transaction("read the channel checkpoint") as s:
            row = s.first(
                "SELECT cursor_type, value FROM channel_checkpoints WHERE channel_id = %s",
                (channel_id,),
            )
        return Checkpoint(*row) if row else None

    def save_checkpoint(self, channel_id: str, checkpoint: Checkpoint, *, job_id: str) -> None:
        """Store ``checkpoint`` as written by ``job_id`` (jobs store theirs with
        ``finish_job``, in the transaction that marks them succeeded)."""
        with self._transaction("store the channel checkpoint") as s:
            s.execute(
                _UPSERT + " VALUES (%s, %s, %s, %s)" + _ON_CONFLICT,
                (channel_id, checkpoint.cursor_type, checkpoint.value, job_id),
            )

    def reset_checkpoint(self, channel_id: str) -> bool:
        """Forget the channel's checkpoint: its next job fetches from the initial value."""
        with self._transaction("reset the channel checkpoint") as s:
            row = s.first(
                "DELETE FROM channel_checkpoints WHERE channel_id = %s RETURNING channel_id",
                (channel_id,),
            )
        return row is not None


def store_for_job(s: Sql, job_id: str, checkpoint: Checkpoint) -> None:
    """Store ``checkpoint`` for the channel of ``job_id``, inside the caller's transaction."""
    s.execute(
        _UPSERT
        + " SELECT channel_id, %s, %s, job_id FROM job_runs WHERE job_id = %s"
        + _ON_CONFLICT,
        (checkpoint.cursor_type, checkpoint.value, job_id),
    )


_UPSERT = "INSERT INTO channel_checkpoints (channel_id, cursor_type, value, job_id)"
_ON_CONFLICT = (
    " ON CONFLICT (channel_id) DO UPDATE SET cursor_type = EXCLUDED.cursor_type,"
    " value = EXCLUDED.value, job_id = EXCLUDED.job_id, updated_at = now()"
)

__all__ = ["CheckpointsMixin", "store_for_job"]
