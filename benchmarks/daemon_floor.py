"""The daemon benchmark's floor: what any worker on RabbitMQ and PostgreSQL must at least do.

Per task: the submitter records a row in one transaction and publishes a persistent message
(publisher confirms) to a durable quorum queue, as ``enqueue_import`` does; a consumer process
does one transaction per message (the row marked done) and acks. No image, no store, no
flow: the cost of the broker, the database and an asyncio consumer, nothing of ours.

``benchmarks/bench_daemon.py`` runs it beside the daemon; run alone, this file is one
consumer process: ``daemon_floor.py BROKER_URL QUEUE DATABASE_URL PREFETCH``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import aio_pika
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BROKER = "amqp://guest:guest@127.0.0.1:5672/"
QUEUE_ARGUMENTS = {"x-queue-type": "quorum"}


async def consume(broker: str, queue_name: str, database: str, prefetch: int) -> None:
    """Mark each message's row done in one transaction, then ack; forever."""
    engine = create_async_engine(database, pool_size=prefetch)
    connection = await aio_pika.connect_robust(broker)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.declare_queue(queue_name, durable=True, arguments=QUEUE_ARGUMENTS)

    async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with engine.begin() as db:
            await db.execute(
                text("UPDATE floor_tasks SET status = 'done' WHERE id = :id"),
                {"id": message.body.decode()},
            )
        await message.ack()

    await queue.consume(handle)
    print("ready", flush=True)
    await asyncio.Future()


@contextmanager
def _consumers(broker: str, queue: str, database: str, count: int, prefetch: int) -> Iterator[None]:
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, broker, queue, database, str(prefetch)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a floor consumer did not start")
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


async def measure(database: str, tasks: int, consumers: int, prefetch: int) -> float:
    """Tasks per second through ``consumers`` floor processes (16 concurrent submitters)."""
    engine: AsyncEngine = create_async_engine(database, pool_size=16)
    queue_name = f"bench-floor-{uuid.uuid4().hex[:8]}"
    async with engine.begin() as db:
        await db.execute(
            text("CREATE TABLE IF NOT EXISTS floor_tasks (id text PRIMARY KEY, status text)")
        )
    connection = await aio_pika.connect_robust(BROKER)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(queue_name, durable=True, arguments=QUEUE_ARGUMENTS)
        with _consumers(BROKER, queue_name, database, consumers, prefetch):
            slots = asyncio.Semaphore(16)

            async def submit() -> None:
                async with slots:
                    task_id = str(uuid.uuid4())
                    async with engine.begin() as db:
                        await db.execute(
                            text("INSERT INTO floor_tasks VALUES (:id, 'pending')"), {"id": task_id}
                        )
                    await channel.default_exchange.publish(
                        aio_pika.Message(
                            task_id.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                        ),
                        routing_key=queue_name,
                    )

            started = time.perf_counter()
            await asyncio.gather(*(submit() for _ in range(tasks)))
            while True:
                async with engine.connect() as db:
                    pending = await db.scalar(
                        text("SELECT count(*) FROM floor_tasks WHERE status <> 'done'")
                    )
                if not pending:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
        await engine.dispose()
    return tasks / elapsed


if __name__ == "__main__":
    broker_url, queue_arg, database_url, prefetch_arg = sys.argv[1:5]
    asyncio.run(consume(broker_url, queue_arg, database_url, int(prefetch_arg)))
