"""A pyftpdlib server on 127.0.0.1 and a free port, served from a thread: the demo FTP channel
of ``amazoniax dev`` and the tests' FTP servers both run on it."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self


class LocalFtpServer:
    def __init__(self, handler: type[Any], *, name: str = "ftp-server") -> None:
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        # A loop of its own: pyftpdlib's default IOLoop is shared by every server of a process.
        self._server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
        self.port: int = self._server.address[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                self._server.ioloop.loop(timeout=0.02, blocking=False)
        finally:
            self._server.close_all()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
