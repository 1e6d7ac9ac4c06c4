"""``/metrics`` of an ``imgworker api`` process, on ``[api] metrics_listen`` (its own port,
so the image API's port, often public, shows no counters)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from worker.config.address import parse_address


async def start_metrics(listen: str, registry: CollectorRegistry) -> web.AppRunner:
    """Serve ``registry`` on ``listen``; stop it with ``await runner.cleanup()``."""

    async def metrics(request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        host, port = parse_address(listen)
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
