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
from typing import Any, Protocol

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.exceptions import ChannelPreconditionFailed

from flows.errors import TransientError
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


class AmqpSink:
    """One connection to the notification broker, opened on demand, dropped on failure."""

    def __init__(self, settings: NotificationSettings, url: str) -> None:
        self._settings = settings
        self._url = amqp_url(url)
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        #: Default queues declared on this connection (oslo declares each once).
        self._queues: set[str] = set()

    async def send(self, message: dict[str, Any]) -> None:
        """Publish on every topic; raise :class:`NotificationUndelivered` if the broker
        does not confirm."""
        try:
            for topic in self._settings.topics:
                routing_key = f"{topic}.{str(message['priority']).lower()}"
                await self._publish(routing_key, envelope(message), str(message["message_id"]))
        except Exception as exc:
            await self.close()
            raise NotificationUndelivered(
                f"the notification broker did not take {message['event_type']}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def _publish(self, routing_key: str, body: bytes, message_id: str) -> None:
        exchange = await self._exchange_for(routing_key)
        await exchange.publish(
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

    async def _exchange_for(self, routing_key: str) -> AbstractExchange:
        """The exchange, connected and declared, with ``routing_key``'s default queue."""
        if self._exchange is None:
            self._connection = await aio_pika.connect(self._url, timeout=CONNECT_SECONDS)
            self._exchange = await self._declare_exchange()
        if routing_key not in self._queues:
            await self._declare_queue(routing_key)
            self._queues.add(routing_key)
        assert self._exchange is not None
        return self._exchange

    async def _new_channel(self) -> AbstractChannel:
        assert self._connection is not None
        self._channel = await self._connection.channel(publisher_confirms=True)
        return self._channel

    async def _declare_exchange(self) -> AbstractExchange:
        name, durable = self._settings.exchange, self._settings.durable
        channel = await self._new_channel()
        try:
            return await channel.declare_exchange(
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
            channel = await self._new_channel()
            return await channel.get_exchange(name, ensure=True)

    async def _declare_queue(self, routing_key: str) -> None:
        assert self._channel is not None and self._exchange is not None
        durable = self._settings.durable
        try:
            queue = await self._channel.declare_queue(
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
            channel = await self._new_channel()
            self._exchange = await channel.get_exchange(self._settings.exchange, ensure=False)
            queue = await channel.declare_queue(routing_key, passive=True)
        await queue.bind(self._exchange, routing_key=routing_key)

    async def close(self) -> None:
        """Close the connection (the next send opens a new one)."""
        connection, self._connection = self._connection, None
        self._channel, self._exchange = None, None
        self._queues.clear()
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                log.debug("closing the notification broker connection", exc_info=True)
