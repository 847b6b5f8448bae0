"""Serve demo sites with uvicorn in background threads, on 127.0.0.1 and a free port.

``start`` returns once the server accepts connections; ``RunningSite.stop`` returns once the
server thread is gone (about 0.2 s: uvicorn checks for shutdown every 0.1 s). The listening
socket is bound before the thread starts, so the port is known up front and never races with
another process.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from amazoniax_dagster.core.errors import InfrastructureError
from amazoniax_dagster.devstack.demo_sites.base import DemoSite, Record, Variant

if TYPE_CHECKING:
    import uvicorn

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0


@dataclass(eq=False)
class RunningSite:
    """A demo site being served. Its state (variant, faults, log) changes in place: the
    address stays the same for the life of the handle."""

    site: DemoSite
    host: str
    port: int
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _errors: list[BaseException] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.site.name

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash): join paths to it."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"{self.origin}/"

    @property
    def is_running(self) -> bool:
        return self._thread.is_alive()

    @property
    def variant(self) -> Variant:
        return self.site.variant

    @variant.setter
    def variant(self, value: Variant) -> None:
        self.site.variant = value

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request so far as ``(method, path?query)``, the live list (clear() works)."""
        return self.site.requests

    def fail_next(
        self,
        n: int,
        status: int = 503,
        retry_after: str | None = "0",
        *,
        path_prefix: str | None = None,
    ) -> None:
        self.site.fail_next(n, status, retry_after, path_prefix=path_prefix)

    def ground_truth(self) -> list[Record]:
        return self.site.ground_truth()

    def channel_config(self) -> dict[str, Any]:
        return self.site.channel_config(self.origin)

    def request_stop(self) -> None:
        """Ask the server to stop without waiting (see ``stop_all``)."""
        self._server.should_exit = True

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop serving and wait for the server thread to end; idempotent."""
        self.request_stop()
        self._join(timeout)

    def _join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            # Connections that do not close in time are dropped rather than waited for.
            self._server.force_exit = True
            self._thread.join(timeout)
        if self._thread.is_alive():
            raise InfrastructureError(
                f"demo site {self.name} at {self.origin} did not stop within {2 * timeout:.0f} s"
            )


def start(site: DemoSite | str, *, host: str = "127.0.0.1") -> RunningSite:
    """Serve ``site`` (a DemoSite or a CATALOG name) and return once it accepts connections."""
    running = _launch(_as_site(site), host)
    _wait_started(running)
    return running


@contextmanager
def serve(site: DemoSite | str, *, host: str = "127.0.0.1") -> Iterator[RunningSite]:
    """``with serve(JsonPagesSite()) as running: httpx.get(running.origin + "/api/")``."""
    running = start(site, host=host)
    try:
        yield running
    finally:
        running.stop()


@contextmanager
def serve_all(
    sites: Iterable[DemoSite | str] | None = None, *, host: str = "127.0.0.1"
) -> Iterator[dict[str, RunningSite]]:
    """Serve several sites (default: one of each in CATALOG), started and stopped together;
    yields them by name."""
    if sites is None:
        from amazoniax_dagster.devstack.demo_sites.catalog import CATALOG

        sites = list(CATALOG)
    launched: list[RunningSite] = []
    try:
        for site in sites:
            launched.append(_launch(_as_site(site), host))
        for running in launched:
            _wait_started(running)
        by_name = {running.name: running for running in launched}
        if len(by_name) != len(launched):
            raise ValueError("serve_all needs sites with distinct names")
        yield by_name
    finally:
        stop_all(launched)


def stop_all(sites: Iterable[RunningSite], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Stop several sites in parallel (one shutdown delay in all, not one each)."""
    sites = list(sites)
    for running in sites:
        running.request_stop()
    for running in sites:
        running._join(timeout)


def _as_site(site: DemoSite | str) -> DemoSite:
    if isinstance(site, DemoSite):
        return site
    from amazoniax_dagster.devstack.demo_sites.catalog import CATALOG

    try:
        return CATALOG[site].factory()
    except KeyError:
        raise ValueError(f"unknown demo site {site!r}; known: {', '.join(CATALOG)}") from None


def _launch(site: DemoSite, host: str) -> RunningSite:
    import uvicorn  # lazy: only demo and test runs need a web server

    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every response waits for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.bind((host, 0))
    except OSError as exc:
        sock.close()
        raise InfrastructureError(
            f"cannot bind a port on {host} for demo site {site.name}"
        ) from exc
    config = uvicorn.Config(
        site,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by _wait_started
            errors.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"demo-site-{site.name}", daemon=True)
    running = RunningSite(site, host, sock.getsockname()[1], server, thread, errors)
    thread.start()
    return running


def _wait_started(running: RunningSite) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not running._server.started:
        if not running._thread.is_alive() or time.monotonic() > deadline:
            running.stop(timeout=1.0)
            cause = running._errors[0] if running._errors else None
            raise InfrastructureError(
                f"demo site {running.name} did not start on {running.origin}"
                + (f": {type(cause).__name__}: {cause}" if cause else "")
            ) from cause
        time.sleep(0.005)
