"""The broker topology, declared idempotently by publishers and workers alike.

- a durable direct exchange (``[broker] exchange``) routing ``routing_key`` to
- a durable quorum queue (``[broker] queue``) with an explicit ``x-delivery-limit``: a message
  delivered that many times is dead-lettered by the broker instead of looping forever;
- a fanout dead-letter exchange (``[broker] dead_letter_exchange``) and its durable quorum
  queue (``[broker] dead_letter_queue``), where malformed and exhausted messages wait for an
  operator.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from worker.config.settings import BrokerSettings


async def declare(
    channel: AbstractChannel, broker: BrokerSettings
) -> tuple[AbstractExchange, AbstractQueue, AbstractExchange]:
    """Declare everything; return (task exchange, task queue, dead-letter exchange)."""
    dead_letters = await channel.declare_exchange(
        broker.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead_queue = await channel.declare_queue(
        broker.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead_queue.bind(dead_letters)
    exchange = await channel.declare_exchange(
        broker.exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    queue = await channel.declare_queue(
        broker.queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": broker.delivery_limit,
            "x-dead-letter-exchange": broker.dead_letter_exchange,
        },
    )
    await queue.bind(exchange, routing_key=broker.routing_key)
    return exchange, queue, dead_letters
