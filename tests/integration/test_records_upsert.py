"""The records upsert on PostgreSQL: exact counts across batches, and loads of one channel
that run at once."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.records.load import Counts, upsert
from amazoniax_dagster.records.mapping import Item, RecordMapping, to_item

pytestmark = pytest.mark.integration


def items(records: list[dict[str, Any]]) -> list[Item]:
    return [to_item(r, RecordMapping()) for r in records]


def load(db: FetcherDB, channel: str, records: list[dict[str, Any]], batch: int) -> Counts:
    with db.database.transaction() as sql:
        return upsert_in(sql.cursor, channel, records, batch)


def upsert_in(cur: Any, channel: str, records: list[dict[str, Any]], batch: int) -> Counts:
    counts = Counts()
    upsert(
        cur,
        items(records),
        source_type="api",
        source_name=channel,
        job_id="j",
        file_key="k",
        counts=counts,
        batch=batch,
    )
    return counts


def stored(db: FetcherDB, channel: str) -> dict[str, str | None]:
    with db.database.transaction() as sql:
        found = sql.all(
            "SELECT external_id, title FROM unified_items WHERE source_name = %s", (channel,)
        )
    return dict(found)


def counted(counts: Counts) -> tuple[int, int, int]:
    return counts.inserted, counts.updated, counts.unchanged


def test_new_changed_and_unchanged_rows_in_one_batch_and_across_batches(
    fetcher_db: FetcherDB,
) -> None:
    channel = f"ups-{uuid.uuid4().hex[:8]}"
    first = [{"id": f"r{i}", "title": f"t{i}"} for i in range(7)]
    assert counted(load(fetcher_db, channel, first, batch=3)) == (7, 0, 0)

    # r1 and r5 change, r0 repeats unchanged, r7/r8 are new; r2 comes twice in one batch, the
    # later (changed) copy winning, and r8 twice in different batches, changed the second time.
    second = [
        {"id": "r0", "title": "t0"},
        {"id": "r1", "title": "T1"},
        {"id": "r2", "title": "old"},
        {"id": "r2", "title": "T2"},
        {"id": "r8", "title": "t8"},
        {"id": "r7", "title": "t7"},
        {"id": "r5", "title": "T5"},
        {"id": "r8", "title": "T8"},
    ]
    counts = load(fetcher_db, channel, second, batch=4)
    assert counted(counts) == (2, 4, 2)  # r0 and r2's first copy unchanged; r8 in, then updated
    assert stored(fetcher_db, channel) == {
        **{f"r{i}": f"t{i}" for i in (0, 3, 4, 6, 7)},
        "r1": "T1",
        "r2": "T2",
        "r5": "T5",
        "r8": "T8",
    }
    assert counted(load(fetcher_db, channel, second[-3:], batch=2)) == (0, 0, 3)


def test_two_loads_of_one_channel_at_once_wait_for_each_other(fetcher_db: FetcherDB) -> None:
    channel = f"ups-{uuid.uuid4().hex[:8]}"
    records = [{"id": f"c{i}", "title": f"t{i}"} for i in range(50)]
    second: list[Counts | BaseException] = []

    def other_load() -> None:
        try:
            second.append(load(fetcher_db, channel, records, batch=20))
        except BaseException as exc:  # reported by the assertion below
            second.append(exc)

    with fetcher_db.database.transaction() as sql:
        first = upsert_in(sql.cursor, channel, records, batch=20)
        other = threading.Thread(target=other_load)
        other.start()
        while not lock_waiters(fetcher_db):  # the other load waits on this transaction
            assert other.is_alive(), second
            time.sleep(0.02)
    other.join()
    assert counted(first) == (50, 0, 0)
    assert [counted(c) if isinstance(c, Counts) else c for c in second] == [(0, 0, 50)]
    assert len(stored(fetcher_db, channel)) == 50


def lock_waiters(db: FetcherDB) -> int:
    with db.database.transaction() as sql:
        found = sql.first("SELECT count(*) FROM pg_locks WHERE NOT granted")
    return int(found[0]) if found else 0


def test_a_first_load_goes_straight_in_and_an_id_seen_in_an_earlier_batch_is_still_upserted(
    fetcher_db: FetcherDB,
) -> None:
    # A fresh channel's batches are COPYed with no lookup; r1 comes back in the third batch
    # (changed) and r2 in the fourth (unchanged): the unique key refuses those straight COPYs
    # and the batches are looked up instead, so nothing is duplicated and nothing is lost.
    channel = f"ups-{uuid.uuid4().hex[:8]}"
    records = [{"id": f"r{i}", "title": f"t{i}"} for i in range(6)]
    records += [{"id": "r6", "title": "t6"}, {"id": "r1", "title": "T1"}]
    records += [{"id": "r2", "title": "t2"}, {"id": "r7", "title": "t7"}]
    records += [{"id": f"r{i}", "title": f"t{i}"} for i in range(8, 12)]
    counts = load(fetcher_db, channel, records, batch=2)
    assert counted(counts) == (12, 1, 1)
    assert stored(fetcher_db, channel) == {f"r{i}": "T1" if i == 1 else f"t{i}" for i in range(12)}


def test_a_new_tail_after_stored_rows_is_loaded_once(fetcher_db: FetcherDB) -> None:
    # A channel with rows: the first batch is looked up (all stored), the next ones are new; one
    # of the later batches holds a stored id again, so its straight COPY is refused and undone.
    channel = f"ups-{uuid.uuid4().hex[:8]}"
    assert counted(load(fetcher_db, channel, [{"id": "a", "title": "A"}], batch=2)) == (1, 0, 0)
    records = [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]
    records += [{"id": "c", "title": "C"}, {"id": "d", "title": "D"}]
    records += [{"id": "e", "title": "E"}, {"id": "a", "title": "A2"}]
    records += [{"id": "f", "title": "F"}]
    counts = load(fetcher_db, channel, records, batch=2)
    assert counted(counts) == (5, 1, 1)
    assert stored(fetcher_db, channel) == {
        "a": "A2", "b": "B", "c": "C", "d": "D", "e": "E", "f": "F",
    }  # fmt: skip
