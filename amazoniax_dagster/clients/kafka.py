"""Kafka: publish a message (and wait for the broker to take it), read a bounded batch, and
the few admin calls the local stack and ``doctor`` need.

One client, librdkafka (``confluent-kafka``), for all of it. Reading assigns partitions and
seeks to offsets the caller keeps (the sensor cursor is the source of truth), so no consumer
group is joined and nothing is committed to the broker. The client is imported lazily.
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
        ``max_records`` are read, ``max_seconds`` have passed, every partition is caught up, or
        a poll stays empty for ``idle_ms``. Records come in offset order per partition."""
        from confluent_kafka import (
            OFFSET_BEGINNING,
            Consumer,
            KafkaError,
            KafkaException,
            TopicPartition,
        )

        check_bootstrap_servers(self.bootstrap_servers)
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "client.id": f"{self.client_id}-reader",
                # Partitions are assigned, never subscribed: no group is joined, nothing is
                # committed; librdkafka only wants a name.
                "group.id": f"{self.client_id}-reader",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,
                "socket.connection.setup.timeout.ms": 10_000,
                "logger": logging.getLogger(LIBRDKAFKA_LOGGER),
            }
        )
        try:
            partitions = self._partitions(consumer, topic)
            consumer.assign(
                [TopicPartition(topic, p, positions.get(p, OFFSET_BEGINNING)) for p in partitions]
            )
            records: list[Record] = []
            next_offsets: dict[int, int] = {}
            caught_up: set[int] = set()
            deadline = time.monotonic() + max_seconds
            first = True
            while len(records) < max_records and time.monotonic() < deadline:
                # The first poll also fetches positions: give it longer.
                wait = max(idle_ms, 2000) if first else idle_ms
                polled = consumer.consume(min(max_records - len(records), 1000), wait / 1000)
                first = False
                if not polled:
                    break
                for message in polled:
                    error = message.error()
                    if error is not None and error.code() == KafkaError._PARTITION_EOF:
                        caught_up.add(message.partition() or 0)
                        continue
                    if error is not None:
                        raise TransientError(f"cannot read {topic}: {error.str()}")
                    partition, offset = message.partition(), message.offset()
                    assert partition is not None and offset is not None  # a message, not an event
                    caught_up.discard(partition)
                    records.append(Record(partition, offset, message.key(), message.value()))
                    next_offsets[partition] = offset + 1
                if caught_up >= set(partitions):
                    break
            return Batch(records, next_offsets)
        except KafkaException as exc:
            raise TransientError(f"cannot read {topic}: {exc}") from exc
        finally:
            consumer.close()

    def _partitions(self, consumer: Any, topic: str) -> list[int]:
        from confluent_kafka import KafkaException

        try:
            metadata = consumer.list_topics(topic, timeout=10)
        except KafkaException as exc:
            raise TransientError(
                f"cannot reach Kafka at {self.bootstrap_servers}: {exc.args[0].str()}"
            ) from exc
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise InfrastructureError(f"Kafka topic {topic!r} does not exist")
        return sorted(found.partitions)

    def topic_names(self, *, timeout: float = 10.0) -> set[str]:
        """The topics the cluster knows (for ``doctor`` and the local stack)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        check_bootstrap_servers(self.bootstrap_servers)
        admin = AdminClient(self._admin_config())
        try:
            return set(admin.list_topics(timeout=timeout).topics)
        except KafkaException as exc:
            raise TransientError(
                f"cannot reach Kafka at {self.bootstrap_servers}: {exc.args[0].str()}"
            ) from exc

    def create_topics(self, names: list[str], *, timeout: float = 10.0) -> None:
        """Create the topics that do not exist yet (one partition each)."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.cimpl import NewTopic

        missing = sorted(set(names) - self.topic_names(timeout=timeout))
        if not missing:
            return
        admin = AdminClient(self._admin_config())
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=1, replication_factor=1) for name in missing],
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise InfrastructureError(f"cannot create topic {name}: {exc}") from exc

    def _admin_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": f"{self.client_id}-admin",
            "socket.connection.setup.timeout.ms": 10_000,
            "logger": logging.getLogger(LIBRDKAFKA_LOGGER),
        }

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
