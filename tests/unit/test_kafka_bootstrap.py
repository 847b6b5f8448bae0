"""A malformed Kafka address is refused before anything waits on it."""

import pytest

from amazoniax_dagster.clients.kafka import KafkaBus, check_bootstrap_servers
from amazoniax_dagster.core.errors import ConfigError


@pytest.mark.parametrize(
    "servers", ["127.0.0.1:no-port", "127.0.0.1:0", "127.0.0.1:70000", ":9092", "a:1,b:x"]
)
def test_a_malformed_address_is_a_config_error(servers: str) -> None:
    bus = KafkaBus(servers)
    with pytest.raises(ConfigError, match="invalid Kafka bootstrap servers"):
        bus.publish("amazoniax_status", b"x", timeout=1)


@pytest.mark.parametrize(
    "servers", ["kafka:9092", "a:1, b:2", "kafka", "[::1]:9092", "[::1]", "127.0.0.1:65535"]
)
def test_a_well_formed_address_is_taken(servers: str) -> None:
    check_bootstrap_servers(servers)  # no exception
