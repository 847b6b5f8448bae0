"""One SFTP file read with pipelined requests (see :class:`SftpStream`).

Up to :data:`READS_IN_FLIGHT` read requests of
``reply_limit`` bytes each, answered in any order, then one that meets the end of the file. A
file that fits in one reply takes two requests. paramiko's own prefetch is not used: it
starts a thread per file, and when the replies catch up with that thread it marks the file
finished, so the rest is read one synchronous 32 KiB request at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

from amazoniax_dagster.sources.sftp_keys import sftp_errors, translate_sftp_error

if TYPE_CHECKING:
    from paramiko import SFTPClient, SFTPFile

# The largest read that a server is first assumed to answer in one reply: OpenSSH's
# sftp-server answers up to 255 KiB (its SFTP_MAX_READ_LENGTH). A server that answers less is
# learned from its first short reply that was not the end of a file (``SftpSource.reply_limit``);
# a short reply is always completed by a request for the rest, so nothing depends on it.
# Large reads mean fewer requests per file than paramiko's 32 KiB (docs/performance.md).
REPLY_LIMIT = 255 * 1024
MIN_REPLY_LIMIT = 4 * 1024  # never learned lower, whatever a server answers
READS_IN_FLIGHT = 8  # per file: ~2 MiB at 255 KiB a request


class ReplyLimit(Protocol):
    """Where the largest reply a server answers is kept (one per source, learned once)."""

    reply_limit: int


class _SftpRequests(Protocol):
    """The part of paramiko's ``SFTPClient`` that its prefetch uses (not in its stubs)."""

    def _async_request(self, fileobj: object, t: int, *args: object) -> int: ...
    def _read_response(self, waitfor: int | None = None) -> tuple[Any, Any]: ...
    def _convert_status(self, msg: Any) -> None: ...


class SftpStream:
    """One open SFTP file as a read-only stream, read with pipelined requests.

    Requests cover the listed size and one byte more (the engine reads that byte to tell a
    file that grew), then go on while data keeps coming. A reply may be shorter than asked
    anywhere in a file: the rest is asked for at once, and when data follows a short reply
    the stream asks no more than that from then on. Errors arrive already translated.

    paramiko has no public API for requests in flight, so this uses the calls its own
    prefetch is built on: ``SFTPClient._async_request`` (the reply goes to this object's
    ``_async_response``) and ``_read_response`` (reads one reply). Only the thread reading
    the stream reads replies: each pooled SFTP session serves one borrower at a time.
    """

    def __init__(
        self,
        client: SFTPClient,
        handle: SFTPFile,
        listed_size: int | None,
        what: str,
        *,
        limits: ReplyLimit,
    ) -> None:
        self._client = cast(_SftpRequests, client)
        self._handle = handle
        self._what = what
        self._limits = limits
        self._position = 0  # next byte to return
        self._next = 0  # next byte to ask for
        self._horizon = (listed_size or 0) + 1  # ask up to here; moved on while data comes
        self._end: int | None = None  # where the server said the file ends
        self._gaps: list[tuple[int, int]] = []  # rests of short replies, still to ask for
        self._requests: dict[int, tuple[int, int]] = {}  # in flight: number -> offset, length
        self._replies: dict[int, bytes] = {}  # offset -> data, not returned yet
        self._short: dict[int, int] = {}  # where a short reply stopped -> its length
        self._error: BaseException | None = None
        self.eof = False

    @property
    def in_flight(self) -> bool:
        return bool(self._requests)

    def read(self, size: int = -1) -> bytes:
        if size == 0 or self.eof:
            return b""
        chunks: list[bytes] = []
        got = 0
        try:
            while size < 0 or got < size:
                data = self._next_piece(size - got if size > 0 else None)
                if data is None:
                    self.eof = True
                    break
                chunks.append(data)
                got += len(data)
        except sftp_errors() as exc:
            raise translate_sftp_error(exc, self._what) from exc
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _next_piece(self, most: int | None) -> bytes | None:
        """Up to ``most`` bytes at the stream's position, or None at the end of the file."""
        while self._position not in self._replies:
            if self._error is not None:
                raise self._error
            if self._end is not None and self._position >= self._end:
                return None
            if self._position >= self._horizon:  # the file grew: keep asking
                self._horizon = self._position + READS_IN_FLIGHT * self._limits.reply_limit
            self._ask()
            if not self._requests:  # cannot happen; a clear error is better than a hang
                raise OSError(f"SFTP read at byte {self._position} has nothing to wait for")
            self._client._read_response()
        data = self._replies.pop(self._position)
        if most is not None and len(data) > most:
            self._replies[self._position + most] = data[most:]
            data = data[:most]
        self._position += len(data)
        return data

    def _ask(self) -> None:
        """Fill the pipeline: rests of short replies first, then the file in order."""
        from paramiko.sftp import CMD_READ, int64

        while len(self._requests) < READS_IN_FLIGHT:
            if self._gaps:
                offset, length = self._gaps.pop()
            elif self._next < self._horizon and (self._end is None or self._next < self._end):
                offset = self._next
                length = min(self._limits.reply_limit, self._horizon - offset)
                self._next += length
            else:
                return
            number = self._client._async_request(
                self, CMD_READ, self._handle.handle, int64(offset), int(length)
            )
            self._requests[number] = (offset, length)

    def _async_response(self, kind: int, msg: Any, number: int) -> None:
        """paramiko's callback for a reply to one of this stream's requests."""
        from paramiko.sftp import CMD_DATA, CMD_STATUS

        offset, length = self._requests.pop(number)
        if kind == CMD_STATUS:
            try:
                self._client._convert_status(msg)
            except EOFError:  # nothing at or after ``offset``
                self._ends_at(offset)
            except Exception as exc:  # kept for the reader, as paramiko's prefetch does
                self._error = exc
            return
        if kind != CMD_DATA:
            self._error = OSError(f"unexpected SFTP reply type {kind} to a read")
            return
        data: bytes = msg.get_string()[:length]  # more than asked would overlap the next
        if offset in self._short:  # data followed a short reply: the server's limit
            self._limits.reply_limit = max(
                MIN_REPLY_LIMIT, min(self._limits.reply_limit, self._short.pop(offset))
            )
        if not data:
            self._ends_at(offset)
            return
        self._replies[offset] = data
        if len(data) < length:  # short: ask for the rest (or learn where the file ends)
            self._short[offset + len(data)] = len(data)
            self._gaps.append((offset + len(data), length - len(data)))

    def _ends_at(self, offset: int) -> None:
        """A reply said nothing is at ``offset``: the file ends there at the latest."""
        self._end = offset if self._end is None else min(self._end, offset)
