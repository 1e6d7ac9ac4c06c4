"""Where the relay sends notifications: RabbitMQ as oslo.messaging does, or the log.

:class:`AmqpSink` publishes as oslo.messaging's rabbit driver does for the ``messagingv2``
notifier: to the topic exchange ``[notifications] exchange`` (durable only with
``durable``, like ``amqp_durable_queues``), routing key ``<topic>.<priority>``, after
declaring the default queue of that name (oslo's notifier declares it so that notifications
nobody consumes yet are kept), each message persistent, JSON, UTF-8, with publisher confirms.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.exceptions import ChannelPreconditionFailed

from flows.errors import TransientError
from worker.broker.connection import LazyConnection
from worker.config.settings import NotificationSettings
from worker.notifications.wire import CONTENT_ENCODING, CONTENT_TYPE, envelope

log = logging.getLogger(__name__)

#: Seconds to connect, and for one publish to be confirmed.
CONNECT_SECONDS = 10.0
PUBLISH_SECONDS = 10.0
#: The logger oslo.messaging's ``log`` driver writes to (``.<event_type>`` appended).
LOG_DRIVER_LOGGER = "oslo.messaging.notification"


class NotificationUndelivered(TransientError):
    """The notification broker did not take a notification; it waits in the database."""

    reason = "notification_broker"


class Sink(Protocol):
    """Delivers one notification, or raises :class:`NotificationUndelivered`."""

    async def send(self, message: dict[str, Any]) -> None:
        """Deliver ``message`` (oslo's message dict) and return once it is safe."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class LogSink:
    """oslo.messaging's ``log`` driver: one log record per notification, at its priority."""

    async def send(self, message: dict[str, Any]) -> None:
        """Log ``message`` as JSON to ``oslo.messaging.notification.<event_type>``."""
        logger = logging.getLogger(f"{LOG_DRIVER_LOGGER}.{message['event_type']}")
        level = logging.getLevelName(str(message["priority"]).upper())
        logger.log(level if isinstance(level, int) else logging.INFO, json.dumps(message))

    async def close(self) -> None:
        """Nothing to release."""


def amqp_url(url: str) -> str:
    """``url`` for the AMQP client: oslo's ``rabbit://`` scheme is AMQP's ``amqp://``."""
    scheme, sep, rest = url.partition("://")
    return f"amqp{sep}{rest}" if scheme == "rabbit" else url


@dataclass
class _Outlet:
    """What the sink publishes through on one connection."""

    connection: AbstractConnection
    channel: AbstractChannel
    exchange: AbstractExchange
    #: Default queues declared on this connection (oslo declares each once).
    queues: set[str] = field(default_factory=set)


class AmqpSink:
    """One connection to the notification broker, opened on demand, dropped on failure."""

    def __init__(self, settings: NotificationSettings, url: str) -> None:
        self._settings = settings
        self._connection = LazyConnection(amqp_url(url), self._open, timeout=CONNECT_SECONDS)

    async def send(self, message: dict[str, Any]) -> None:
        """Publish on every topic; raise :class:`NotificationUndelivered` if the broker
        does not confirm."""
        try:
            outlet = await self._connection.get()
            for topic in self._settings.topics:
                routing_key = f"{topic}.{str(message['priority']).lower()}"
                await self._publish(
                    outlet, routing_key, envelope(message), str(message["message_id"])
                )
        except Exception as exc:
            await self.close()
            raise NotificationUndelivered(
                f"the notification broker did not take {message['event_type']}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def _publish(
        self, outlet: _Outlet, routing_key: str, body: bytes, message_id: str
    ) -> None:
        if routing_key not in outlet.queues:
            await self._declare_queue(outlet, routing_key)
            outlet.queues.add(routing_key)
        await outlet.exchange.publish(
            aio_pika.Message(
                body,
                # The AMQP client always sends one (kombu sends none): the notification's own.
                message_id=message_id,
                content_type=CONTENT_TYPE,
                content_encoding=CONTENT_ENCODING,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                priority=0,
                headers={},
            ),
            routing_key=routing_key,
            mandatory=False,
            timeout=PUBLISH_SECONDS,
        )

    async def _open(self, connection: AbstractConnection) -> _Outlet:
        """The channel and the exchange, declared on a new connection."""
        name, durable = self._settings.exchange, self._settings.durable
        channel = await connection.channel(publisher_confirms=True)
        try:
            exchange = await channel.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=durable, auto_delete=False
            )
        except ChannelPreconditionFailed as exc:
            # Declared before with other arguments by another service: use it as it is.
            log.warning(
                "notifications: exchange %s exists with other arguments than durable=%s "
                "(%s); publishing to it as it is. Set [notifications] durable as the other "
                "services on this broker set amqp_durable_queues",
                name,
                durable,
                exc,
            )
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(name, ensure=True)
        return _Outlet(connection, channel, exchange)

    async def _declare_queue(self, outlet: _Outlet, routing_key: str) -> None:
        durable = self._settings.durable
        try:
            queue = await outlet.channel.declare_queue(
                routing_key, durable=durable, auto_delete=False
            )
        except ChannelPreconditionFailed as exc:
            log.warning(
                "notifications: queue %s exists with other arguments than durable=%s (%s); "
                "using it as it is",
                routing_key,
                durable,
                exc,
            )
            # The failed declaration closed the channel: publish through a new one.
            outlet.channel = await outlet.connection.channel(publisher_confirms=True)
            outlet.exchange = await outlet.channel.get_exchange(
                self._settings.exchange, ensure=False
            )
            queue = await outlet.channel.declare_queue(routing_key, passive=True)
        await queue.bind(outlet.exchange, routing_key=routing_key)

    async def close(self) -> None:
        """Close the connection (the next send opens a new one)."""
        await self._connection.drop()
