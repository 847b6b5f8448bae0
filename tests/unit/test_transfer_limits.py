"""Bounds that keep transfers flat: the connection pool that shrinks to what a server accepts,
the memory budget of small files and the reusable part buffers of large ones."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from amazoniax_dagster.core.errors import ConfigError, TransientError
from amazoniax_dagster.core.messages import FtpSourceConfig
from amazoniax_dagster.sources.remote_tree import (
    ConnectionPool,
    pool_size,
)
from amazoniax_dagster.sync.transfer import MemoryBudget, PartBuffers


@dataclass(eq=False)
class Conn:
    number: int
    closed: bool = False


def limited_pool(size: int, accepts: int, error: Exception) -> tuple[ConnectionPool[Conn], list]:
    """A pool whose server accepts ``accepts`` connections and refuses more with ``error``."""
    made: list[Conn] = []
    lock = threading.Lock()

    def factory() -> Conn:
        with lock:
            if sum(not c.closed for c in made) >= accepts:
                raise error
            conn = Conn(len(made))
            made.append(conn)
            return conn

    def close(conn: Conn) -> None:
        conn.closed = True

    pool = ConnectionPool(factory, close=close, healthy=lambda c: not c.closed, size=size)
    return pool, made


def run_parallel(pool: ConnectionPool[Conn], borrowers: int) -> int:
    """Borrow from many threads at once; returns the most connections in use together."""
    in_use = peak = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        nonlocal in_use, peak
        try:
            with pool.borrow():
                with lock:
                    in_use += 1
                    peak = max(peak, in_use)
                time.sleep(0.02)
                with lock:
                    in_use -= 1
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(borrowers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return peak


@pytest.mark.parametrize(
    "refusal",
    [
        TransientError("421 Too many connections from this IP"),
        ConfigError("530 Sorry, the maximum number of clients for this user are connected"),
    ],
)
def test_a_server_that_allows_fewer_connections_shrinks_the_pool(refusal: Exception) -> None:
    pool, made = limited_pool(size=8, accepts=3, error=refusal)
    with pool.borrow():
        pass  # the first connection (the listing's) logs in fine
    peak = run_parallel(pool, borrowers=12)  # every borrower is served, none fails
    assert peak <= 3
    assert pool.size == 3
    assert sum(not c.closed for c in made) <= 3
    pool.close()
    assert all(c.closed for c in made)


def test_a_refused_first_login_still_fails_and_is_remembered() -> None:
    pool, made = limited_pool(size=8, accepts=0, error=ConfigError("530 Login incorrect"))
    for _ in range(3):
        with pytest.raises(ConfigError, match="Login incorrect"), pool.borrow():
            pass
    assert made == []  # the factory refused each time before making anything...
    assert pool.size == 8  # ...and a refused login is not a reason to shrink


def test_a_broken_connection_frees_its_slot_for_a_new_one() -> None:
    pool, made = limited_pool(size=1, accepts=1, error=TransientError("refused"))
    with pool.borrow() as lease:
        lease.broken = True
    with pool.borrow() as lease:
        assert lease.conn is made[1]
    assert made[0].closed and pool.size == 1


def test_pool_size_is_the_channel_setting_within_the_jobs_bound() -> None:
    unset = FtpSourceConfig(host="h")
    assert pool_size(unset, None) == 16
    assert pool_size(unset, 6) == 6  # the job's own bound still holds
    explicit = FtpSourceConfig(host="h", max_connections=2)
    assert pool_size(explicit, 32) == 2


def test_memory_budget_blocks_until_bytes_are_given_back() -> None:
    budget = MemoryBudget(100)
    assert budget.take(60) == 60
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (budget.take(60), got.set()))
    waiter.start()
    assert not got.wait(0.1)  # 60 + 60 > 100: the second reader waits
    budget.give(60)
    assert got.wait(5)
    waiter.join()
    assert budget.used == 60


def test_memory_budget_never_exceeds_its_limit() -> None:
    budget = MemoryBudget(100)
    peak = 0
    lock = threading.Lock()

    def work(amount: int) -> None:
        nonlocal peak
        taken = budget.take(amount)
        with lock:
            peak = max(peak, budget.used)
        time.sleep(0.005)
        budget.give(taken)

    threads = [threading.Thread(target=work, args=(30 + i % 50,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0 < peak <= 100
    assert budget.used == 0
    assert budget.take(1_000) == 100  # more than the whole budget: the whole budget


def test_part_buffers_are_reused_and_bounded() -> None:
    buffers = PartBuffers(3)
    seen: set[int] = set()
    in_use = peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal in_use, peak
        buffer = buffers.take(1024)
        with lock:
            seen.add(id(buffer))
            in_use += 1
            peak = max(peak, in_use)
        time.sleep(0.005)
        with lock:
            in_use -= 1
        buffers.give(buffer)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak <= 3
    assert len(seen) <= 3  # 20 parts, at most 3 buffers ever made
    assert len(buffers.take(4096)) >= 4096  # a larger part gets a larger buffer
