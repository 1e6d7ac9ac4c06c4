"""The worker's HTTP endpoints: /metrics, /livez, /readyz and POST /drain (docs/metrics.md).

The daemon owns the state (:class:`Health`) and the actions (the database probe, the drain);
this module only answers requests about them. Everything is read-only (other methods get 405)
except ``POST /drain``, which is taken only from loopback (the pod's own ``preStop``, the
host's ``imgworker drain``) or with ``[worker] drain_token`` as a bearer token: a port bound
to ``0.0.0.0`` for scraping must not let any neighbour drain the pool.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flows.errors import TerminalError
from flows.qemu import qemu_img_path
from worker.config.address import LOOPBACK, within
from worker.config.settings import Settings
from worker.daemon.listening import listen
from worker.daemon.logs import one_line
from worker.daemon.metrics import Metrics

log = logging.getLogger(__name__)

#: How long /readyz waits for the database before calling it unreachable.
DATABASE_TIMEOUT_SECONDS: Final = 3.0
#: The answer to a drain that is neither from loopback nor carries the token.
DRAIN_REFUSED: Final = (
    "drain refused: POST /drain is accepted from loopback (imgworker drain on the worker's "
    "own host or pod) or with 'Authorization: Bearer <[worker] drain_token>'\n"
)


@dataclass
class Health:
    """What the daemon tells readiness: set by the consumer, the start and the drain."""

    consumer_attached: bool = False
    draining: bool = False
    #: What the worker is waiting for at start (``database``/``broker``) and why.
    waiting: dict[str, str] = field(default_factory=dict)


async def start_http(
    settings: Settings,
    metrics: Metrics,
    health: Health,
    check_database: Callable[[], Awaitable[None]],
    on_drain: Callable[[], None],
) -> web.AppRunner:
    """Serve the endpoints on ``[worker] http``; stop them with ``await runner.cleanup()``.

    Raises :class:`~worker.daemon.listening.CannotListen` when that address cannot be bound.

    ``check_database`` raises when the database does not answer; ``on_drain`` starts a
    graceful drain and returns at once.
    """
    endpoints = _Endpoints(settings, metrics, health, check_database, on_drain)
    app = web.Application()
    app.add_routes(
        [
            web.get("/metrics", endpoints.metrics),
            web.get("/livez", endpoints.livez),
            web.get("/readyz", endpoints.readyz),
            web.post("/drain", endpoints.drain),
        ]
    )
    # Probes and scrapes every few seconds would drown the task logs.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await listen(runner, settings.worker.http, "[worker] http")
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound_address(runner: web.AppRunner) -> tuple[str, int]:
    """The host and port the server listens on (the real port when configured as 0)."""
    if not runner.addresses:
        raise RuntimeError("the HTTP server is not listening; call start_http first")
    address = runner.addresses[0]
    return str(address[0]), int(address[1])


class _Endpoints:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        health: Health,
        check_database: Callable[[], Awaitable[None]],
        on_drain: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._health = health
        self._check_database = check_database
        self._on_drain = on_drain

    async def metrics(self, request: web.Request) -> web.Response:
        # Collectors stat the staging directory, which can block on a sick file system.
        body = await asyncio.to_thread(generate_latest, self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def livez(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        problems = await self._readiness_problems()
        if problems:
            return web.Response(status=503, text="".join(f"{line}\n" for line in problems))
        return web.Response(text="ready\n")

    async def drain(self, request: web.Request) -> web.Response:
        token = self._settings.worker.drain_token
        secret = token.get_secret_value() if token is not None else None
        if not drain_permitted(request.remote, request.headers.get("Authorization"), secret):
            log.warning("drain refused for %s: not loopback and no valid token", request.remote)
            return web.Response(status=403, text=DRAIN_REFUSED)
        self._on_drain()
        return web.Response(status=202, text="draining\n")

    async def _readiness_problems(self) -> list[str]:
        # Draining is final and says all; no need to probe the database while stopping.
        if self._health.draining:
            return ["draining"]
        waiting = self._health.waiting
        problems = list(waiting.values())
        if not self._health.consumer_attached:
            problems.append("consumer not attached")
        database, local = await asyncio.gather(
            self._database_problem() if "database" not in waiting else _nothing(),
            asyncio.to_thread(
                local_problems,
                self._settings.staging.dir,
                self._settings.safety.staging_min_free_bytes,
            ),
        )
        if database:
            problems.append(database)
        return problems + local

    async def _database_problem(self) -> str | None:
        try:
            await asyncio.wait_for(self._check_database(), DATABASE_TIMEOUT_SECONDS)
        except TimeoutError:
            return f"database unreachable: no answer within {DATABASE_TIMEOUT_SECONDS:g} s"
        except Exception as exc:
            return f"database unreachable: {one_line(exc)}"
        return None


async def _nothing() -> None:
    return None


def drain_permitted(remote: str | None, authorization: str | None, token: str | None) -> bool:
    """Whether a drain from ``remote`` with that ``Authorization`` header may start.

    Loopback may always drain; anyone else only with ``Bearer <token>`` when a token is
    configured, compared in constant time.
    """
    if token is not None and authorization is not None:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return True
    return within(remote, LOOPBACK)


def local_problems(staging_dir: Path, min_free_bytes: int) -> list[str]:
    """What stops this host from importing: the staging directory and qemu-img (blocking)."""
    problems = []
    staging = staging_problem(staging_dir, min_free_bytes)
    if staging:
        problems.append(staging)
    try:
        qemu_img_path()
    except TerminalError as exc:
        problems.append(str(exc))
    return problems


def staging_problem(staging_dir: Path, min_free_bytes: int) -> str | None:
    """Why ``staging_dir`` cannot take an image now, or ``None`` (blocking)."""
    if not staging_dir.exists():
        return f"staging directory {staging_dir} is missing; create it or change [staging] dir"
    if not staging_dir.is_dir():
        return f"staging directory {staging_dir} is not a directory; change [staging] dir"
    try:
        with tempfile.TemporaryFile(dir=staging_dir, prefix=".readyz-"):
            pass
    except OSError as exc:
        return f"staging directory {staging_dir} is not writable: {exc.strerror or exc}"
    free = shutil.disk_usage(staging_dir).free
    if free < min_free_bytes:
        return (
            f"staging directory {staging_dir} has {free} bytes free, below "
            f"[safety] staging_min_free_bytes = {min_free_bytes}; free space or move it"
        )
    return None
