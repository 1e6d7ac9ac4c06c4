"""Hearing imgworker's notifications the way the OpenStack services do.

:func:`oslo_listener` runs an unmodified oslo.messaging notification listener
(``get_notification_listener``, from PyPI, in .venv-clients) as a subprocess on the test's
own exchange and topic, and :class:`Heard` reads what it received. :func:`raw_capture`
binds a queue of the test's own to the same exchange to see the AMQP messages themselves.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from tests.support.clients import CLIENTS

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
MAIN = Path(__file__).with_name("oslo_listener_main.py")
#: oslo.messaging's notification priorities (one queue each per listener).
PRIORITIES = ("audit", "critical", "debug", "error", "info", "sample", "warn")


@dataclass(frozen=True)
class NotificationTopology:
    """A test's own exchange and topic, so that no other test or service hears them."""

    prefix: str = field(default_factory=lambda: f"it-{uuid.uuid4().hex[:10]}")

    @property
    def exchange(self) -> str:
        """The topic exchange (Glance's is ``glance``)."""
        return f"{self.prefix}.glance"

    @property
    def topic(self) -> str:
        """The topic (oslo's default is ``notifications``)."""
        return f"{self.prefix}.notifications"

    def settings(self, url: str = AMQP) -> dict[str, str]:
        """``IMGWORKER_NOTIFICATIONS__*`` variables that publish here."""
        return {
            "IMGWORKER_NOTIFICATIONS__DRIVER": '"messaging"',
            "IMGWORKER_NOTIFICATIONS__URL": f'"{url}"',
            "IMGWORKER_NOTIFICATIONS__EXCHANGE": f'"{self.exchange}"',
            "IMGWORKER_NOTIFICATIONS__TOPICS": f'["{self.topic}"]',
            "IMGWORKER_NOTIFICATIONS__POLL_SECONDS": "0.2",
        }

    def toml(self, url: str = AMQP) -> str:
        """The same as a ``[notifications]`` section."""
        return (
            f'[notifications]\ndriver = "messaging"\nurl = "{url}"\n'
            f'exchange = "{self.exchange}"\ntopics = ["{self.topic}"]\npoll_seconds = 0.2\n'
        )


@dataclass
class Heard:
    """What the listener received so far (each line as its endpoint was handed it)."""

    path: Path

    def all(self) -> list[dict[str, Any]]:
        """Every notification, in the order received."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def about(self, image_id: str, task_ids: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The notifications about ``image_id`` (its image events, an error upload naming
        it, ``image.send``) and about the tasks ``task_ids``."""
        return [n for n in self.all() if _about(n, image_id, task_ids)]

    def wait_for(
        self, check: Callable[[list[dict[str, Any]]], bool], what: str, timeout: float = 120
    ) -> list[dict[str, Any]]:
        """Every notification once ``check`` holds for them; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            heard = self.all()
            if check(heard):
                return heard
            if time.monotonic() > deadline:
                kinds = [n["event_type"] for n in heard]
                raise AssertionError(f"timed out waiting for {what}; heard {kinds}")
            time.sleep(0.2)


def _about(notification: dict[str, Any], image_id: str, task_ids: tuple[str, ...]) -> bool:
    payload = notification["payload"]
    if isinstance(payload, str):
        return image_id in payload
    if notification["event_type"].startswith("task."):
        return payload.get("id") in task_ids
    return image_id in (payload.get("id"), payload.get("image_id"))


@contextmanager
def oslo_listener(topology: NotificationTopology, root: Path) -> Iterator[Heard]:
    """An oslo.messaging notification listener on ``topology`` for the duration."""
    python = CLIENTS / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run deploy/dev/clients.sh", pytrace=False)
    output = root / f"heard-{topology.prefix}.jsonl"
    log = root / f"listener-{topology.prefix}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(python),
                # Isolated: the script's own directory is not put first on sys.path (this
                # http.py is not the standard library's).
                "-I",
                str(MAIN),
                "rabbit://guest:guest@127.0.0.1:5672/",
                topology.exchange,
                topology.topic,
                str(output),
            ],
            stdout=subprocess.PIPE,
            stderr=sink,
        )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"listening":
            raise AssertionError(f"the oslo.messaging listener did not start:\n{log.read_text()}")
        yield Heard(output)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # In a thread of its own: the test calling this may be running an event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, delete_notification_topology(topology)).result()


async def delete_notification_topology(topology: NotificationTopology) -> None:
    """Remove the test's default queues and exchange from the broker."""
    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel()
        # The listener declares a queue for every priority oslo.messaging knows.
        for priority in PRIORITIES:
            await channel.queue_delete(f"{topology.topic}.{priority}")
        await channel.exchange_delete(topology.exchange)


@asynccontextmanager
async def raw_capture(
    topology: NotificationTopology,
) -> AsyncIterator[list[aio_pika.abc.AbstractIncomingMessage]]:
    """The AMQP messages published on ``topology``'s exchange, as they arrive."""
    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            topology.exchange, aio_pika.ExchangeType.TOPIC, durable=False
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key=f"{topology.topic}.*")
        captured: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            captured.append(message)

        await queue.consume(keep, no_ack=True)
        yield captured
