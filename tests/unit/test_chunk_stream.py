"""A body obstore hands out in chunks, read as a binary stream: sizes across chunk boundaries,
``readinto`` under ``io.BufferedReader``, a body cut short, errors translated."""

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from amazoniax_dagster.clients.object_store import ChunkStream
from amazoniax_dagster.core.errors import ConfigError, TransientError

BODY = bytes(range(256)) * 40  # 10,240 bytes
SIZES = [1000, 3000, 6240]  # chunk sizes as a server might send them


@contextmanager
def as_config(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise ConfigError(f"cannot {what}: {exc}") from exc


def chunks(body: bytes = BODY, sizes: list[int] = SIZES) -> Iterator[bytes]:
    start = 0
    for size in sizes:
        yield body[start : start + size]
        start += size


@pytest.mark.parametrize("size", [1, 999, 1000, 1001, 4096, 10_240, 20_000])
def test_read_returns_whole_pieces_of_any_size_until_the_end(size: int) -> None:
    stream = ChunkStream(chunks(), "get", as_config, expected=len(BODY))
    parts: list[bytes] = []
    while part := stream.read(size):
        assert len(part) == size or len(b"".join(parts)) + len(part) == len(BODY)
        parts.append(part)
    assert b"".join(parts) == BODY
    assert stream.read(size) == b""


def test_read_without_a_size_reads_the_rest() -> None:
    stream = ChunkStream(chunks(), "get", as_config)
    assert stream.read(10) == BODY[:10]
    assert stream.read() == BODY[10:]
    assert stream.read(None) == b""


def test_a_buffered_reader_reads_it_through_readinto() -> None:
    reader = io.BufferedReader(ChunkStream(chunks(), "get", as_config), buffer_size=4096)
    assert reader.read(5) == BODY[:5]
    assert reader.read() == BODY[5:]
    reader.close()


def test_a_body_shorter_than_expected_is_transient() -> None:
    stream = ChunkStream(chunks(sizes=[1000, 3000]), "get k", as_config, expected=len(BODY))
    with pytest.raises(TransientError, match="get k: the body ended after 4000 of 10240"):
        stream.read()


def test_an_error_while_reading_is_translated_and_closes_the_stream() -> None:
    def failing() -> Iterator[bytes]:
        yield b"abc"
        raise OSError("connection reset")

    stream = ChunkStream(failing(), "get k", as_config)
    with pytest.raises(ConfigError, match="cannot get k: connection reset"):
        stream.read()
    assert stream.closed
