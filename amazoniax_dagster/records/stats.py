"""What ``unified_items`` holds for a channel: counts the asset checks and the API report."""

from __future__ import annotations

from dataclasses import dataclass

from amazoniax_dagster.db.pg import Database


@dataclass(frozen=True)
class Quality:
    items: int
    duplicate_ids: int
    with_title: int
    with_published_at: int

    def share(self, field: str) -> float:
        found = self.with_title if field == "title" else self.with_published_at
        return round(found / self.items, 4) if self.items else 1.0


def channel_quality(db: Database, channel_id: str) -> Quality:
    with db.transaction() as sql:
        row = sql.first(
            "SELECT count(*), count(*) - count(DISTINCT external_id), count(title),"
            " count(published_at) FROM unified_items WHERE source_name = %s",
            (channel_id,),
        )
    assert row is not None
    return Quality(*(int(v) for v in row))
