"""``KafkaBus`` against the stack's broker: publishing, and the producer warmed up ahead of it."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

import pytest

from amazoniax_dagster.clients.kafka import KafkaBus
from amazoniax_dagster.core.errors import ConfigError, TransientError
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.devstack.ports import free_port
from amazoniax_dagster.devstack.processes import LOOPBACK

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
    # A malformed address fails at once (an unreachable one waits out the publish timeout).
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


def test_an_unreachable_broker_fails_the_publish_in_its_timeout_and_quietly(
    capfd: pytest.CaptureFixture[str],
) -> None:
    bus = KafkaBus(f"{LOOPBACK}:{free_port()}", client_id="tests-unreachable")
    try:
        with pytest.raises(
            TransientError,
            match=r"could not publish to amazoniax_status: Kafka at .* did not acknowledge"
            r" within 2 s",
        ):
            bus.publish(TOPIC, b"x", timeout=2)
    finally:
        bus.close()
    # librdkafka's connection errors went to our logger, not straight to the process's stderr.
    assert "Connection refused" not in capfd.readouterr().err


def test_a_process_that_publishes_leaves_kafka_python_out(stack: StackEndpoints) -> None:
    # A job process publishes once; kafka-python would cost it ~0.3 s of imports.
    reader = KafkaBus(stack.kafka_bootstrap, client_id="tests-publish-reader")
    try:
        start = reader.read(TOPIC, {}, max_records=100_000, idle_ms=200).next_offsets
        payload = uuid.uuid4().hex
        code = (
            "import sys\n"
            "from amazoniax_dagster.clients.kafka import KafkaBus\n"
            f"bus = KafkaBus({stack.kafka_bootstrap!r})\n"
            f"bus.publish({TOPIC!r}, {payload!r}.encode())\n"
            "bus.close()\n"
            "print('kafka' in sys.modules)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert proc.stdout.strip() == "False"
        read = reader.read(TOPIC, start, idle_ms=500)
        assert payload.encode() in [r.value for r in read.records]
    finally:
        reader.close()
