"""Kafka: publish a message (and wait for the broker to take it), and read a bounded batch.

Publishing goes through librdkafka (``confluent-kafka``): every job process publishes once, and
that client imports in a third of kafka-python's time (0.11 s against 0.3 s), which is most of a
small job's start-up. Reading stays on kafka-python: it runs in the long-lived code server, and
assigns partitions and seeks to offsets the caller keeps (the sensor cursor is the source of
truth), so no consumer group is joined and nothing is committed to the broker.
Both clients are imported lazily.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from amazoniax_dagster.core.errors import ConfigError, InfrastructureError, TransientError

log = logging.getLogger(__name__)
#: The logger librdkafka's own lines go to (connection errors, retries).
LIBRDKAFKA_LOGGER = f"{__name__}.librdkafka"

#: How long a published message may take to be acknowledged, retries included.
DELIVERY_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Topics:
    fetcher: str = "amazoniax_fetcher"
    parsers: str = "amazoniax_parsers"
    status: str = "amazoniax_status"
    dead_letter: str = "amazoniax_fetcher_dlq"


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Batch:
    records: list[Record]
    #: next offset to read per partition after the records (only for partitions that had any)
    next_offsets: dict[int, int]


class KafkaBus:
    def __init__(self, bootstrap_servers: str, *, client_id: str = "amazoniax") -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self._producer: Any = None
        # Held while the producer is created, so that publish() waits for a warm-up under way.
        self._producer_lock = threading.Lock()
        self._warming: threading.Thread | None = None

    # -- producing ----------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        timeout: float = DELIVERY_TIMEOUT_S,
    ) -> None:
        """Send one message and wait until the broker acknowledged it.

        A message that was not acknowledged in ``timeout`` may still arrive later (librdkafka
        keeps trying until its delivery timeout), so a caller that retries may publish it
        twice: delivery is at least once, as with any producer that retries.
        """
        from confluent_kafka import KafkaException

        producer = self._get_producer()
        delivered = threading.Event()
        failure: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failure.append(err.str())
            delivered.set()

        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
            # Delivery reports are served by poll(), in whichever thread polls: short polls,
            # so that a report another thread served is seen at once.
            deadline = time.monotonic() + timeout
            while not delivered.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransientError(
                        f"could not publish to {topic}: Kafka at {self.bootstrap_servers}"
                        f" did not acknowledge within {timeout:g} s"
                    )
                producer.poll(min(remaining, 0.05))
        except (KafkaException, BufferError) as exc:
            raise TransientError(f"could not publish to {topic}: {exc}") from exc
        if failure:
            raise TransientError(f"could not publish to {topic}: {failure[0]}")

    def warm_up(self) -> None:
        """Import the Kafka client and create the producer in the background (once).

        A job calls this when it knows it will publish, so that the client's import overlaps
        its transfers instead of following them. A failure here is not reported: ``publish``
        tries again and raises.
        """
        # Never waits: the caller is a transfer thread, and a producer being created (by a
        # warm-up or a publish) holds the lock for as long as Kafka takes to answer.
        if not self._producer_lock.acquire(blocking=False):
            return
        try:
            if self._producer is not None or self._warming is not None:
                return
            self._warming = threading.Thread(
                target=self._warm, name="amazoniax-kafka-warm-up", daemon=True
            )
            self._warming.start()  # it waits for the lock until this call returns
        finally:
            self._producer_lock.release()

    def _warm(self) -> None:
        try:
            self._get_producer()
        except Exception as exc:  # publish() tries again and raises
            log.debug("Kafka warm-up failed: %s", exc)

    def _get_producer(self) -> Any:
        with self._producer_lock:
            if self._producer is None:
                self._producer = self._new_producer()
            return self._producer

    def _new_producer(self) -> Any:
        from confluent_kafka import KafkaException, Producer

        check_bootstrap_servers(self.bootstrap_servers)
        try:
            return Producer(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "client.id": self.client_id,
                    "acks": "all",
                    "linger.ms": 5,
                    # librdkafka retries by itself until a message's delivery timeout.
                    "message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000),
                    "socket.connection.setup.timeout.ms": 10_000,
                    # Its log lines go to a logger of ours, not straight to stderr.
                    "logger": logging.getLogger(LIBRDKAFKA_LOGGER),
                }
            )
        except KafkaException as exc:
            raise ConfigError(f"invalid Kafka producer settings: {exc}") from exc

    # -- consuming ----------------------------------------------------------------------------

    def read(
        self,
        topic: str,
        positions: dict[int, int],
        *,
        max_records: int = 500,
        max_seconds: float = 10.0,
        idle_ms: int = 300,
    ) -> Batch:
        """Read from ``positions`` (partition -> next offset; absent = from the beginning) until
        ``max_records`` are read, ``max_seconds`` have passed, or a poll stays empty for
        ``idle_ms`` (caught up). Records come in offset order per partition."""
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=f"{self.client_id}-reader",
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                request_timeout_ms=20000,
                max_poll_records=max_records,
            )
        except KafkaError as exc:
            raise TransientError(
                f"cannot reach Kafka at {self.bootstrap_servers}: {type(exc).__name__}"
            ) from exc
        try:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise InfrastructureError(f"Kafka topic {topic!r} does not exist")
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            for tp in tps:
                if tp.partition in positions:
                    consumer.seek(tp, positions[tp.partition])
                else:
                    consumer.seek_to_beginning(tp)
            records: list[Record] = []
            next_offsets: dict[int, int] = {}
            deadline = time.monotonic() + max_seconds
            first = True
            while len(records) < max_records and time.monotonic() < deadline:
                # The first poll also fetches metadata and positions: give it longer.
                polled = consumer.poll(
                    timeout_ms=max(idle_ms, 2000) if first else idle_ms,
                    max_records=max_records - len(records),
                )
                first = False
                if not polled:
                    break
                for tp, messages in polled.items():
                    for m in messages:
                        records.append(Record(tp.partition, m.offset, m.key, m.value))
                        next_offsets[tp.partition] = m.offset + 1
            return Batch(records, next_offsets)
        except KafkaError as exc:
            raise TransientError(f"cannot read {topic}: {type(exc).__name__}: {exc}") from exc
        finally:
            consumer.close()

    def close(self) -> None:
        if self._warming is not None:  # a producer it is still creating is closed too
            self._warming.join()
        with self._producer_lock:
            producer, self._producer, self._warming = self._producer, None, None
        if producer is not None:
            producer.flush(5)  # delivers what is still queued; librdkafka frees it with the object


def check_bootstrap_servers(servers: str) -> None:
    """Refuse a malformed ``host:port,...`` list at once: librdkafka would only log it, and a
    publish would wait out its delivery timeout."""
    for server in (entry.strip() for entry in servers.split(",")):
        host, sep, port = server.rpartition(":")
        if not sep or server.endswith("]"):  # no port: librdkafka takes 9092
            host, port = server, "9092"
        if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"invalid Kafka bootstrap servers {servers!r}: {server!r}")
