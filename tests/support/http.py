"""A real aiohttp server on loopback serving test files (web-download sources)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web


@asynccontextmanager
async def serve_directory(directory: Path) -> AsyncIterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port); yield the base URL.

    ``/redirect/NAME`` answers 302 to ``/NAME``; ``/redirect-to?url=URL`` answers 302 to any
    URL; ``/status/CODE`` answers that status.
    """

    async def redirect_to(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(request.query["url"])

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/{request.match_info['name']}")

    async def status(request: web.Request) -> web.StreamResponse:
        return web.Response(status=int(request.match_info["code"]), text="test status")

    app = web.Application()
    app.router.add_get("/redirect/{name}", redirect)
    app.router.add_get("/redirect-to", redirect_to)
    app.router.add_get("/status/{code}", status)
    app.router.add_static("/", directory)
    async with serve_app(app) as base:
        yield base


@asynccontextmanager
async def serve_app(app: web.Application, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port), over TLS with ``tls``; yield the base URL;
    stop it afterwards."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def stalled_body(request: web.Request) -> web.StreamResponse:
    """A handler that announces 10 MiB, sends 1 KiB and then nothing for a minute."""
    response = web.StreamResponse(headers={"Content-Length": str(10 * 1024 * 1024)})
    await response.prepare(request)
    await response.write(b"x" * 1024)
    await asyncio.sleep(60)
    return response
