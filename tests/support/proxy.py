"""A TCP forwarder a test starts and stops: a real service behind a real network outage.

It runs its own event loop in a thread, so it keeps forwarding while the test blocks (a
``subprocess.run``, a ``time.sleep``) and the test can use it from sync or async code. While
stopped nothing listens on its port (connections are refused); :meth:`TcpProxy.stop` also
cuts every connection in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.workers import free_port


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target_host:target_port`` while started."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    def start(self) -> None:
        """Listen and forward."""
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        """Stop listening and cut every open connection."""
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        """Stop, and end the proxy's thread."""
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._streams):
            writer.close()
        self._streams.clear()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._streams.update((writer, upstream_writer))
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            for stream in (writer, upstream_writer):
                self._streams.discard(stream)
                stream.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


@contextmanager
def tcp_proxy(target_host: str, target_port: int, *, started: bool = False) -> Iterator[TcpProxy]:
    """A proxy to the target, stopped (or ``started``) at first; closed at the end."""
    proxy = TcpProxy(target_host, target_port)
    try:
        if started:
            proxy.start()
        yield proxy
    finally:
        proxy.close()
