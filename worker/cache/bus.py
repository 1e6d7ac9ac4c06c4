"""Cache commands between nodes, through RabbitMQ.

- a durable fanout exchange ``<[broker] exchange>.cache``;
- one durable quorum queue per node, ``<[broker] exchange>.cache.<node>``, bound to it: a
  command sent to every node waits in the queue of a node that is down until it returns.

A command for one node only (``imgworker cache ... --node NAME``) goes straight to that
node's queue (the default exchange, ``mandatory``: an unknown node is an error, not a silent
loss). Each command is one persistent JSON message; applying one twice changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from enum import StrEnum

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)

from flows.errors import TransientError
from worker.broker.connection import LazyConnection
from worker.config.settings import BrokerSettings

log = logging.getLogger(__name__)

#: Seconds to connect, and for one publish to be confirmed.
CONNECT_SECONDS = 10.0
#: Longest pause between two attempts to reach the broker.
MAX_BACKOFF_SECONDS = 30.0
#: Deliveries of one command before the broker drops it (a command that keeps failing).
DELIVERY_LIMIT = 200


class Action(StrEnum):
    """What a command asks a node to do."""

    QUEUE = "queue"
    #: Remove an image from ``target``: the cache, the queue or both (``DELETE
    #: /v2/cache/{id}``: both).
    DELETE = "delete"
    #: The image itself was deleted: drop every copy.
    IMAGE_DELETED = "image_deleted"
    #: Empty ``target``: the cache, the queue or both.
    CLEAR = "clear"
    PRUNE = "prune"
    CLEAN = "clean"


class ClearTarget(StrEnum):
    """What ``DELETE /v2/cache`` empties."""

    CACHE = "cache"
    QUEUE = "queue"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class CacheCommand:
    """One cache command (the message body)."""

    action: Action
    image_id: str | None = None
    target: ClearTarget | None = None
    #: Who sent it, for the logs.
    sender: str = ""
    version: int = 1

    def to_json(self) -> bytes:
        """The message body."""
        return json.dumps(asdict(self)).encode()

    @classmethod
    def parse(cls, body: bytes) -> CacheCommand:
        """A command from a message body; ValueError saying what is wrong with it."""
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or data.get("version") != 1:
                raise ValueError("not a version 1 cache command")
            image_id, target = data.get("image_id"), data.get("target")
            command = cls(
                action=Action(data["action"]),
                image_id=None if image_id is None else str(uuid.UUID(str(image_id))),
                target=None if target is None else ClearTarget(target),
                sender=str(data.get("sender", "")),
            )
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"unreadable cache command: {exc}") from exc
        needs_image = command.action in (Action.QUEUE, Action.DELETE, Action.IMAGE_DELETED)
        if needs_image != (command.image_id is not None):
            raise ValueError(f"a {command.action} command must name exactly one image")
        if (command.action in (Action.CLEAR, Action.DELETE)) != (command.target is not None):
            raise ValueError("a clear or delete command, and no other, names a target")
        return command


class CacheBusUnavailable(TransientError):
    """The broker cannot take a cache command now."""

    reason = "broker_unavailable"


class UnknownNode(Exception):
    """A command was addressed to a node whose queue does not exist."""


def exchange_name(broker: BrokerSettings) -> str:
    """The fanout exchange every node's queue is bound to."""
    return f"{broker.exchange}.cache"


def queue_name(broker: BrokerSettings, node: str) -> str:
    """The queue of ``node``."""
    return f"{broker.exchange}.cache.{node}"


async def declare_exchange(channel: AbstractChannel, broker: BrokerSettings) -> AbstractExchange:
    """The fanout exchange (idempotent)."""
    return await channel.declare_exchange(
        exchange_name(broker), aio_pika.ExchangeType.FANOUT, durable=True
    )


async def declare_node_queue(
    channel: AbstractChannel, broker: BrokerSettings, node: str
) -> AbstractQueue:
    """``node``'s queue, bound to the fanout exchange (idempotent)."""
    exchange = await declare_exchange(channel, broker)
    queue = await channel.declare_queue(
        queue_name(broker, node),
        durable=True,
        arguments={"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT},
    )
    await queue.bind(exchange)
    return queue


class CacheBus:
    """Sends cache commands; connects on first use and again after a failure."""

    def __init__(self, broker: BrokerSettings) -> None:
        self._broker = broker
        self._connection = LazyConnection(broker.url, self._setup, timeout=CONNECT_SECONDS)

    async def _setup(
        self, connection: AbstractConnection
    ) -> tuple[AbstractChannel, AbstractExchange]:
        channel = await connection.channel(publisher_confirms=True)
        return channel, await declare_exchange(channel, self._broker)

    async def send(self, command: CacheCommand, node: str | None = None) -> None:
        """Send ``command`` to every node, or to ``node`` alone; wait for the broker's confirm.

        :class:`CacheBusUnavailable` when the broker cannot take it, :class:`UnknownNode`
        when ``node`` has no queue.
        """
        message = aio_pika.Message(
            command.to_json(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            channel, exchange = await self._connection.get()
            if node is None:
                await exchange.publish(message, routing_key="", timeout=CONNECT_SECONDS)
            else:
                await channel.default_exchange.publish(
                    message,
                    routing_key=queue_name(self._broker, node),
                    mandatory=True,
                    timeout=CONNECT_SECONDS,
                )
        except aio_pika.exceptions.DeliveryError as exc:
            raise UnknownNode(f"no cache node named {node!r} has a queue on the broker") from exc
        except Exception as exc:
            await self._connection.drop()
            raise CacheBusUnavailable(
                f"the broker did not take the cache command ({type(exc).__name__}: {exc}); "
                "try again shortly"
            ) from exc

    async def close(self) -> None:
        """Close the connection, if open."""
        await self._connection.drop()


Handler = Callable[[CacheCommand], Awaitable[None]]


async def consume(broker: BrokerSettings, node: str, handler: Handler) -> None:
    """Apply every command sent to ``node``, for ever, reconnecting after each failure.

    A command is acknowledged once ``handler`` applied it; one that does not parse is
    dropped with a log line; one whose handler failed (the database down) is delivered
    again a second later.
    """
    backoff = 1.0
    while True:
        try:
            connection = await aio_pika.connect(broker.url, timeout=CONNECT_SECONDS)
            async with connection:
                channel = await connection.channel()
                await channel.set_qos(prefetch_count=1)
                queue = await declare_node_queue(channel, broker, node)
                log.info("cache: node %s consuming %s", node, queue.name)
                backoff = 1.0
                async with queue.iterator() as messages:
                    async for message in messages:
                        await _settle(message, handler)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("cache: command queue unreachable (%s); again in %.0f s", exc, backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


async def _settle(message: AbstractIncomingMessage, handler: Handler) -> None:
    try:
        command = CacheCommand.parse(message.body)
    except ValueError as exc:
        log.error("cache: dropping a command: %s", exc)
        await message.reject(requeue=False)
        return
    try:
        await handler(command)
    except Exception as exc:
        log.warning("cache: %s %s not applied yet: %s", command.action, command.image_id or "", exc)
        await asyncio.sleep(1.0)
        await message.nack(requeue=True)
        return
    await message.ack()
