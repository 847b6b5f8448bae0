"""Free ports on 127.0.0.1, never handed out twice in one process."""

from __future__ import annotations

import random
import socket
import threading

from amazoniax_dagster.devstack.processes import (
    LOOPBACK,
    LocalStackError,
)

# weed's internal worker dials <admin port> + 10000 whatever -admin.port.grpc says, so every
# weed gRPC port is its http port + this offset. Both are taken below the kernel's default
# ephemeral range (32768-60999), where outgoing connections cannot grab them meanwhile.
WEED_GRPC_OFFSET = 10000


_PAIR_PORT_RANGE = (10000, 32767 - WEED_GRPC_OFFSET)


_port_lock = threading.Lock()


_ports_handed_out: set[int] = set()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _claim(port: int) -> bool:
    """Remember ``port`` as handed out by this process; False if it already was."""
    with _port_lock:
        if port in _ports_handed_out:
            return False
        _ports_handed_out.add(port)
        return True


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now (the kernel's choice)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if _claim(port):
            return port
    raise LocalStackError("no free port found on 127.0.0.1")


def free_port_pair(offset: int = WEED_GRPC_OFFSET) -> int:
    """A port ``p`` such that ``p`` and ``p + offset`` are both free on 127.0.0.1."""
    low, high = _PAIR_PORT_RANGE
    for _ in range(500):
        port = random.randint(low, high)
        if _port_is_free(port) and _port_is_free(port + offset) and _claim(port):
            if _claim(port + offset):
                return port
    raise LocalStackError(f"no free port pair (p, p+{offset}) found on 127.0.0.1")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on ``host:port`` (a bind there would fail)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server binds it
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
