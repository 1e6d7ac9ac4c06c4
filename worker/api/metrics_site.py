"""``/metrics`` of an ``imgworker api`` process, on ``[api] metrics_listen`` (its own port,
so the image API's port, often public, shows no counters)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from worker.daemon.listening import listen


async def start_metrics(address: str, registry: CollectorRegistry) -> web.AppRunner:
    """Serve ``registry`` on ``address``; stop it with ``await runner.cleanup()``.

    Raises :class:`~worker.daemon.listening.CannotListen` when the address cannot be bound.
    """

    async def metrics(request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await listen(runner, address, "[api] metrics_listen")
    except BaseException:
        await runner.cleanup()
        raise
    return runner
