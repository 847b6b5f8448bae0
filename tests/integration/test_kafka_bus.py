"""``KafkaBus`` against the stack's broker: publishing, and the producer warmed up ahead of it."""

from __future__ import annotations

import threading
import uuid

import pytest

from amazoniax_dagster.errors import ConfigError
from amazoniax_dagster.kafka import KafkaBus
from amazoniax_dagster.local_stack import LOOPBACK, StackEndpoints

pytestmark = pytest.mark.integration

TOPIC = "amazoniax_status"


def test_a_warmed_up_producer_is_the_one_that_publishes(stack: StackEndpoints) -> None:
    bus = KafkaBus(stack.kafka_bootstrap, client_id="tests-warm-up")
    try:
        start = bus.read(TOPIC, {}, max_records=100_000, idle_ms=200).next_offsets
        bus.warm_up()
        bus.warm_up()  # once: the second call starts nothing
        assert bus._warming is not None
        bus._warming.join(timeout=30)
        warmed = bus._producer
        assert warmed is not None

        payload = uuid.uuid4().bytes
        bus.publish(TOPIC, payload)
        assert bus._producer is warmed
        read = bus.read(TOPIC, start, idle_ms=500)
        assert payload in [r.value for r in read.records]
    finally:
        bus.close()
    assert bus._producer is None


def test_close_right_after_a_warm_up_leaves_no_producer_behind(stack: StackEndpoints) -> None:
    bus = KafkaBus(stack.kafka_bootstrap, client_id="tests-warm-up-close")
    bus.warm_up()
    warming = bus._warming
    bus.close()
    assert warming is not None and not warming.is_alive()
    assert bus._producer is None and bus._warming is None


def test_a_failed_warm_up_is_silent_and_publish_says_what_failed() -> None:
    # A malformed address fails at once (an unreachable one takes kafka-python 30 s).
    bus = KafkaBus(f"{LOOPBACK}:no-port", client_id="tests-warm-up-refused")
    try:
        bus.warm_up()
        assert bus._warming is not None
        bus._warming.join(timeout=30)
        assert not bus._warming.is_alive() and bus._producer is None
        with pytest.raises(
            ConfigError, match="invalid Kafka bootstrap servers '127.0.0.1:no-port'"
        ):
            bus.publish(TOPIC, b"x")
    finally:
        bus.close()


def test_a_warm_up_never_waits_for_a_producer_being_created() -> None:
    # The caller is a transfer thread: while another thread holds the lock to create the
    # producer (as long as Kafka takes to answer), warm_up returns at once.
    bus = KafkaBus(f"{LOOPBACK}:no-port", client_id="tests-warm-up-busy")
    bus._producer_lock.acquire()
    try:
        caller = threading.Thread(target=bus.warm_up)
        caller.start()
        caller.join(timeout=5)
        assert not caller.is_alive()
        assert bus._warming is None
    finally:
        bus._producer_lock.release()
        bus.close()
