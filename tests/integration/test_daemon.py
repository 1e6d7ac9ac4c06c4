"""The daemon against the real RabbitMQ and PostgreSQL: workers as separate processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aio_pika
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from flows.records import FAILED_IMPORT, IMPORT_LOCK, IMPORTING_TO_STORES
from flows.request import ImportRequest
from flows.requester import RequestContext
from tests.support.enqueue import publish
from tests.support.http import serve_app
from tests.support.images import MiB, convert, make_sparse_raw
from tests.support.rabbitmq import private_rabbitmq
from tests.support.records import RecordWrites
from tests.support.services import require_tcp
from tests.support.tasks import STORES, enqueue_download, opened, terminal, until
from tests.support.workers import (
    Topology,
    Worker,
    delete_topology,
    running_workers,
    write_config,
)
from worker.config.settings import Settings, load_settings
from worker.daemon.messages import TaskMessage
from worker.db.catalog import NewImage
from worker.tasks.services import Services
from worker.tasks.submission import SubmissionRules, submit_import

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def topology() -> Topology:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    return Topology()


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[str]:
    """A loopback server: /small.raw (1 MiB), /big.raw (384 MiB of data), /slow.raw (8 MiB
    sent over ~4 s)."""
    www = tmp_path / "www"
    www.mkdir()
    make_sparse_raw(www / "small.raw", 2 * MiB, [(0, MiB)])
    make_sparse_raw(www / "big.raw", 512 * MiB, [(0, 384 * MiB)])
    slow_body = (www / "small.raw").read_bytes() * 4

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(slow_body))})
        await response.prepare(request)
        for offset in range(0, len(slow_body), MiB):
            await response.write(slow_body[offset : offset + MiB])
            await asyncio.sleep(0.5)
        return response

    app = web.Application()
    app.router.add_get("/slow.raw", slow)
    app.router.add_static("/", www)
    async with serve_app(app) as base:
        yield base


@pytest.fixture
async def cleanup_broker(topology: Topology) -> AsyncIterator[None]:
    yield
    await delete_topology(topology)


async def _queue_depth(queue: str, url: str = AMQP) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


def _counter(workers: list[Worker], name: str) -> float:
    total = 0.0
    for worker in workers:
        for family in text_string_to_metric_families(worker.metrics()):
            for sample in family.samples:
                if sample.name == name:
                    total += sample.value
    return total


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.usefixtures("cleanup_broker")
async def test_three_workers_thirty_imports(
    tmp_path: Path, postgres_url: str, topology: Topology, source: str
) -> None:
    config = write_config(tmp_path, postgres_url, topology)
    async with opened(config) as services:
        with running_workers(config, tmp_path, 3) as workers:
            enqueued = [await enqueue_download(services, f"{source}/small.raw") for _ in range(30)]
            for image_id, task_id in enqueued:
                task = await terminal(services, task_id)
                assert task.status == "success", task.message
                image = await services.images.get(image_id)
                assert image.status == "active" and image.stores == STORES
            assert await _queue_depth(topology.queue) == 0
            assert _counter(workers, "imgworker_tasks_succeeded_total") == 30
            assert _counter(workers, "imgworker_tasks_received_total") == 30
            assert _counter(workers, "imgworker_bytes_written_total") >= 30 * 2 * MiB
            assert _counter(workers, "imgworker_bytes_skipped_total") >= 30 * 2 * MiB - 60 * MiB
            busy = [w for w in workers if "imported to" in w.output()]
            assert len(busy) >= 2, "the work was not shared between workers"
            ran = sum(w.output().count("success: imported to") for w in workers)
            assert ran == 30


@pytest.mark.usefixtures("cleanup_broker")
async def test_malformed_messages_are_dead_lettered_with_their_reason(
    tmp_path: Path, postgres_url: str, topology: Topology, source: str
) -> None:
    config = write_config(tmp_path, postgres_url, topology)
    async with opened(config) as services:
        settings: Settings = services.settings
        with running_workers(config, tmp_path, 1) as workers:
            orphan_task, orphan_image = str(uuid.uuid4()), str(uuid.uuid4())
            await RecordWrites(services.records.engine).create_task(
                task_id=orphan_task, image_id=orphan_image, type="api_image_import", input={}
            )
            good = TaskMessage(str(uuid.uuid4()), str(uuid.uuid4()), _request(source), _ctx())
            body = json.loads(good.to_json())
            # A message claiming another requester than the task row the API recorded.
            claimed = await services.records.catalog.create(
                NewImage(owner=None, name="claimed", disk_format="raw", container_format="bare")
            )
            task = await submit_import(
                services.records,
                SubmissionRules.from_settings(settings),
                image_id=claimed.id,
                request=_request(source),
                requester=RequestContext(project_id="project-a", user_id="u1"),
            )
            impostor = TaskMessage(
                task.id,
                claimed.id,
                _request(source),
                RequestContext(project_id="project-b", user_id="u1", roles=("admin",)),
            )
            cases: list[tuple[str, bytes]] = [
                ("bad_field", impostor.to_json()),
                *{
                    "bad_json": b"{not json",
                    "bad_version": json.dumps({**body, "version": 7}).encode(),
                    "bad_field": json.dumps({**body, "task_id": "not-a-uuid"}).encode(),
                    "bad_method": json.dumps(
                        {**body, "import_req": {"method": {"name": "teleport"}}}
                    ).encode(),
                    "unknown_store": json.dumps(
                        {**body, "import_req": {**body["import_req"], "stores": ["mars"]}}
                    ).encode(),
                    "missing_task": good.to_json(),
                    "missing_image": json.dumps(
                        {**body, "task_id": orphan_task, "image_id": orphan_image}
                    ).encode(),
                }.items(),
            ]
            connection = await aio_pika.connect(AMQP)
            async with connection:
                channel = await connection.channel()
                exchange = await channel.get_exchange(topology.exchange)
                for _reason, payload in cases:
                    await exchange.publish(
                        aio_pika.Message(payload), routing_key=settings.broker.routing_key
                    )
                reasons = await _dead_letter_reasons(channel, topology.dead_queue, len(cases))
            assert sorted(reasons) == sorted(reason for reason, _payload in cases)
            assert "recorded for project 'project-a'" in (await services.tasks.get(task.id)).message
            orphan = await services.tasks.get(orphan_task)
            assert orphan.status == "failure" and "missing_image" in orphan.message
            _image, task_id = await enqueue_download(services, f"{source}/small.raw")
            assert (await terminal(services, task_id)).status == "success"
            assert _counter(workers, "imgworker_tasks_dead_lettered_total") == len(cases)


@pytest.mark.usefixtures("cleanup_broker")
async def test_poison_bodies_are_dead_lettered_on_their_first_delivery(
    tmp_path: Path, postgres_url: str, topology: Topology, source: str
) -> None:
    config = write_config(tmp_path, postgres_url, topology)
    poison: dict[str, tuple[bytes, str]] = {
        "not JSON": (b"\x00not json at all", "bad_json"),
        "empty object": (b"{}", "bad_version"),
        "unknown version": (b'{"version": 99}', "bad_version"),
        "200 000 brackets": (b"[" * 100_000 + b"]" * 100_000, "too_large"),
        "2 MiB": (b'{"pad": "' + b"x" * (2 * MiB) + b'"}', "too_large"),
        "deep but small": (b"[" * 20_000 + b"]" * 20_000, "too_deep"),
    }
    async with opened(config) as services:
        with running_workers(config, tmp_path, 1) as (worker,):
            connection = await aio_pika.connect(AMQP)
            async with connection:
                channel = await connection.channel()
                exchange = await channel.get_exchange(topology.exchange)
                for body, _reason in poison.values():
                    await exchange.publish(
                        aio_pika.Message(body), routing_key=services.settings.broker.routing_key
                    )
                copies = await _dead_letters(channel, topology.dead_queue, len(poison))
            assert [c.body for c in copies] == [body for body, _ in poison.values()]
            assert [c.headers["x-imgworker-reason"] for c in copies] == [
                reason for _, reason in poison.values()
            ]
            # First delivery: no redelivery count, no broker dead-lettering (x-death).
            assert not any(c.headers.get("x-delivery-count") for c in copies)
            assert not any("x-death" in c.headers for c in copies)
            _image, task_id = await enqueue_download(services, f"{source}/small.raw")
            assert (await terminal(services, task_id)).status == "success"
            records = worker.json_records()
            rejected = [r for r in records if r["message"].startswith("dead-lettering message")]
            assert len(rejected) == len(poison)
            assert not [r for r in records if "exc" in r], "a traceback was logged"


async def _dead_letters(
    channel: aio_pika.abc.AbstractChannel, queue_name: str, expected: int
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    queue = await channel.declare_queue(queue_name, passive=True)
    copies: list[aio_pika.abc.AbstractIncomingMessage] = []
    deadline = time.monotonic() + 60
    while len(copies) < expected and time.monotonic() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.25)
            continue
        copies.append(message)
    return copies


def _request(source: str) -> ImportRequest:
    return ImportRequest(method="web-download", uri=f"{source}/small.raw")


def _ctx() -> RequestContext:
    return RequestContext(request_id="req-test")


async def _dead_letter_reasons(
    channel: aio_pika.abc.AbstractChannel, queue_name: str, expected: int
) -> list[str]:
    copies = await _dead_letters(channel, queue_name, expected)
    return [str((copy.headers or {}).get("x-imgworker-reason")) for copy in copies]


@pytest.mark.usefixtures("cleanup_broker")
async def test_a_duplicated_message_does_not_import_twice(
    tmp_path: Path, postgres_url: str, topology: Topology, source: str
) -> None:
    config = write_config(tmp_path, postgres_url, topology)
    async with opened(config) as services:
        with running_workers(config, tmp_path, 2) as workers:
            image_id, task_id = await enqueue_download(services, f"{source}/small.raw")
            assert (await terminal(services, task_id)).status == "success"
            message = TaskMessage(task_id, image_id, _request(source), _ctx())
            await publish(services, message)
            await publish(services, message)

            async def acknowledged() -> bool:
                outputs = "".join(w.output() for w in workers)
                return outputs.count("duplicate message acknowledged") >= 2

            await until(acknowledged, 30, "both duplicates")
            image = await services.images.get(image_id)
            assert len(image.locations) == 2
            assert sum(w.output().count("success: imported to") for w in workers) == 1
            assert await _queue_depth(topology.queue) == 0


async def _kill_9_holder(services: Services, task_id: str, workers: list[Worker]) -> Worker:
    """SIGKILL the worker that holds ``task_id``; return it."""
    holder = (await services.tasks.get(task_id)).claimed_by
    victim = next(w for w in workers if w.name == holder)
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    return victim


@pytest.mark.usefixtures("cleanup_broker")
async def test_kill_9_mid_store_write_is_finished_by_another_worker(
    tmp_path: Path, postgres_url: str, topology: Topology, source: str
) -> None:
    config = write_config(
        tmp_path, postgres_url, topology, lease_seconds=6, heartbeat_seconds=1, concurrency=1
    )
    async with opened(config) as services:
        stores = tmp_path / "stores"
        with running_workers(config, tmp_path, 2) as workers:
            image_id, task_id = await enqueue_download(services, f"{source}/big.raw")

            async def writing() -> bool:
                return any(p.name.endswith(".partial") for p in stores.rglob("*"))

            # A store write of 384 MiB lasts about a second: look often enough to catch it.
            await until(writing, 120, "a store write to start", every=0.02)
            victim = await _kill_9_holder(services, task_id, workers)
            task = await terminal(services, task_id)
            assert task.status == "success", task.message
            image = await services.images.get(image_id)
            assert image.status == "active" and image.stores == STORES
            survivor = next(w for w in workers if w is not victim)
            assert "taking over task" in survivor.output()
            assert _files(stores) == sorted(f"{s}/{image_id}" for s in STORES)
            assert not any((tmp_path / "staging").iterdir())


@pytest.mark.usefixtures("cleanup_broker")
async def test_kill_9_mid_parallel_store_writes_leaves_the_guide_s_record(
    tmp_path: Path, postgres_url: str, topology: Topology, source: str
) -> None:
    """Three stores written at once from a converted qcow2; the writer dies mid-way."""
    stores_names = ("central", "dcn0", "dcn1")
    config = write_config(
        tmp_path,
        postgres_url,
        topology,
        stores=stores_names,
        lease_seconds=6,
        heartbeat_seconds=1,
        concurrency=1,
        max_parallel_stores=3,
    )
    www = tmp_path / "www"
    convert(www / "big.raw", www / "big.qcow2", "raw", "qcow2")
    async with opened(config) as services:
        stores = tmp_path / "stores"
        with running_workers(config, tmp_path, 2) as workers:
            image_id, task_id = await enqueue_download(
                services, f"{source}/big.qcow2", list(stores_names), disk_format="qcow2"
            )

            async def writing() -> bool:
                partials = {p.parent.name for p in stores.rglob("*.partial")}
                return len(partials) >= 2

            await until(writing, 120, "the store writes to start", every=0.02)
            victim = await _kill_9_holder(services, task_id, workers)
            task = await terminal(services, task_id)
            assert task.status == "success", task.message
            image = await services.images.get(image_id)
            assert image.status == "active"
            assert sorted(image.stores) == sorted(stores_names)
            assert image.store_list(IMPORTING_TO_STORES) == []
            assert image.store_list(FAILED_IMPORT) == []
            assert (image.disk_format, image.container_format) == ("raw", "bare")
            assert image.size == 512 * MiB
            assert not image.properties.get(IMPORT_LOCK)
            survivor = next(w for w in workers if w is not victim)
            assert "taking over task" in survivor.output()
            # The dead attempt had converted (raw/bare recorded): the bits are qcow2 again.
            assert "restoring formats qcow2/bare" in survivor.output()
            assert _files(stores) == sorted(f"{s}/{image_id}" for s in stores_names)
            assert not any((tmp_path / "staging").iterdir())


@pytest.mark.usefixtures("cleanup_broker")
async def test_sigterm_during_an_import_drains_within_the_grace(
    tmp_path: Path, postgres_url: str, topology: Topology, source: str
) -> None:
    config = write_config(tmp_path, postgres_url, topology, drain_grace_seconds=1, concurrency=1)
    async with opened(config) as services:
        with running_workers(config, tmp_path, 2) as workers:
            image_id, task_id = await enqueue_download(services, f"{source}/slow.raw")

            async def claimed() -> bool:
                return (await services.tasks.get(task_id)).claimed_by is not None

            await until(claimed, 30, "a worker to claim the task")
            holder = (await services.tasks.get(task_id)).claimed_by
            victim = next(w for w in workers if w.name == holder)
            started = time.monotonic()
            victim.signal(signal.SIGTERM)
            victim.process.wait(15)
            assert time.monotonic() - started < 10
            assert victim.process.returncode == 0
            task = await terminal(services, task_id)
            assert task.status == "success", task.message
            assert (await services.images.get(image_id)).status == "active"
            survivor = next(w for w in workers if w is not victim)
            assert "success: imported to" in survivor.output()


@pytest.mark.usefixtures("cleanup_broker")
async def test_rabbitmq_restart_while_idle_and_while_importing(
    tmp_path: Path, postgres_url: str, topology: Topology, source: str
) -> None:
    # A broker of the test's own: the machine's RabbitMQ serves every other test running.
    with private_rabbitmq() as broker:
        config = write_config(tmp_path, postgres_url, topology, broker_url=broker.url)
        services = await Services.open(load_settings(str(config), environ={}))
        try:
            with running_workers(config, tmp_path, 2) as workers:
                broker.restart()
                await until(_all_ready(workers), 60, "consumers to come back")
                _image, task_id = await enqueue_download(services, f"{source}/slow.raw")

                async def claimed() -> bool:
                    return (await services.tasks.get(task_id)).claimed_by is not None

                await until(claimed, 30, "the import to start")
                broker.restart()
                task = await terminal(services, task_id)
                assert task.status == "success", task.message
                await until(_all_ready(workers), 60, "consumers to come back again")
                _second, second_task = await enqueue_download(services, f"{source}/small.raw")
                assert (await terminal(services, second_task)).status == "success"

                async def drained() -> bool:
                    return await _queue_depth(topology.queue, broker.url) == 0

                await until(drained, 60, "the queue to empty")
        finally:
            await services.close()


def _all_ready(workers: list[Worker]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return all(await asyncio.gather(*(asyncio.to_thread(w.ready) for w in workers)))

    return check
