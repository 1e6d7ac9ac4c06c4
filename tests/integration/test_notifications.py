"""Glance's notifications, heard by an unmodified oslo.messaging listener.

`imgworker api` and two `imgworker run` workers on PostgreSQL and RabbitMQ, three file stores
(central, dcn0, dcn1), with ``[notifications] driver = "messaging"`` on an exchange and topic
of the test's own; the listener is oslo.messaging from PyPI (``get_notification_listener``,
run from .venv-clients). For each path of docs/notifications.md the test checks the
sequence of event types and, for each, the image's id, status and both store lists in the
payload, against the sequence a live Glance 33 sends (docs/notifications.md lists where they
differ, and why).
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flows.records import FAILED_IMPORT, IMPORT_LOCK, IMPORTING_TO_STORES
from flows.request import ImportRequest
from tests.integration.conftest import fresh_postgres
from tests.support.api import ApiProcess, running_api
from tests.support.enqueue import enqueue
from tests.support.images import MiB, make_sample_qcow2, make_sparse_raw
from tests.support.notifications import (
    Heard,
    NotificationTopology,
    oslo_listener,
    raw_capture,
)
from tests.support.proxy import tcp_proxy
from tests.support.services import require_tcp
from tests.support.stores import immutable
from tests.support.tasks import opened, terminal, until
from tests.support.web_source import web_source
from tests.support.workers import (
    Topology,
    Worker,
    delete_topology,
    running_workers,
    write_config,
)
from worker.db.catalog import NewImage

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

STORES = ("central", "dcn0", "dcn1")
#: What a summary holds of a notification: (event type, priority, status, importing, failed).
Row = tuple[str | None, ...]


@dataclass
class Cloud:
    """What the tests of this module share."""

    root: Path
    api: ApiProcess
    source: str
    heard: Heard

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        """One API call (``auth = "none"``); the JSON answer, or None."""
        data = body if isinstance(body, bytes) else None
        content_type = "application/octet-stream"
        if body is not None and not isinstance(body, bytes):
            data, content_type = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(
            f"{self.api.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": content_type, **headers},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            raw = reply.read()
        return json.loads(raw) if raw and reply.headers.get_content_type().endswith("json") else raw

    def new_image(self, name: str) -> str:
        """``POST /v2/images`` of a qcow2: the new image's id."""
        body = {"name": name, "disk_format": "qcow2", "container_format": "bare"}
        return str(self.call("POST", "/v2/images", body)["id"])

    def import_(self, image_id: str, method: dict[str, str], **options: Any) -> None:
        """``POST /v2/images/{id}/import``."""
        self.call("POST", f"/v2/images/{image_id}/import", {"method": method, **options})

    def tasks(self, image_id: str) -> tuple[str, ...]:
        """The ids of the image's tasks."""
        return tuple(t["id"] for t in self.call("GET", f"/v2/images/{image_id}/tasks")["tasks"])

    def heard_until(
        self, image_id: str, last: str, count: int = 1, tasks: tuple[str, ...] | None = None
    ) -> list[dict[str, Any]]:
        """The notifications about the image and its tasks (``tasks``, default: those the API
        lists) once ``last`` was heard ``count`` times."""
        task_ids = self.tasks(image_id) if tasks is None else tasks

        def done(_: list[dict[str, Any]]) -> bool:
            events = [n["event_type"] for n in self.heard.about(image_id, task_ids)]
            return events.count(last) >= count

        self.heard.wait_for(done, f"{last} of image {image_id}")
        return self.heard.about(image_id, task_ids)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    root = tmp_path_factory.mktemp("notify")
    www = root / "www"
    www.mkdir()
    make_sample_qcow2(www / "disk.qcow2", 32 * MiB, 4 * MiB)
    topology, notifications = Topology(), NotificationTopology()
    with fresh_postgres() as database, oslo_listener(notifications, root) as heard:
        config = write_config(root, database, topology, stores=STORES)
        with config.open("a") as extra:
            extra.write("\n" + notifications.toml())
        try:
            with (
                web_source(www) as source,
                running_api(config, root) as api,
                running_workers(config, root, 2),
            ):
                yield Cloud(root, api, source, heard)
        finally:
            import asyncio

            asyncio.run(delete_topology(topology))


def summary(notification: dict[str, Any]) -> Row:
    """(event type, priority, status, importing, failed) as the payload says them."""
    event, priority, payload = (
        notification["event_type"],
        notification["priority"],
        notification["payload"],
    )
    if isinstance(payload, str):
        return (event, priority, "<message>")
    if event.startswith("task."):
        return (event, priority, payload["status"])
    if event in ("image.prepare", "image.upload"):
        lists = (",".join(payload[IMPORTING_TO_STORES]), ",".join(payload[FAILED_IMPORT]))
        assert payload["properties"][IMPORTING_TO_STORES] == lists[0]
        assert payload["properties"][FAILED_IMPORT] == lists[1]
    else:
        props = payload["properties"]
        lists = (props.get(IMPORTING_TO_STORES), props.get(FAILED_IMPORT))
    return (event, priority, payload["status"], *lists)


def no_duplicates(heard: list[dict[str, Any]]) -> None:
    ids = [n["metadata"]["message_id"] for n in heard]
    assert len(ids) == len(set(ids)), "a notification was heard twice"


ALL = "central,dcn0,dcn1"
TASK_START = [
    ("task.create", "info", "pending"),
    ("task.run", "info", "pending"),
    ("task.processing", "info", "processing"),
]


#: A web-download into central, dcn0 and dcn1, until central is being written.
WEB_DOWNLOAD_TO_CENTRAL = [
    ("image.create", "info", "queued", None, None),
    *TASK_START,
    ("image.update", "info", "importing", ALL, ""),  # started
    ("image.update", "info", "importing", ALL, ""),  # converted
    ("image.prepare", "info", "importing", ALL, ""),
]


def test_web_download_failure_allowed(cloud: Cloud) -> None:
    """Three stores, dcn0 unwritable, failure allowed: Glance 33's sequence."""
    image_id = cloud.new_image("allow")
    with immutable(cloud.root / "stores" / "dcn0"):
        cloud.import_(
            image_id,
            {"name": "web-download", "uri": f"{cloud.source}/disk.qcow2"},
            stores=list(STORES),
            all_stores_must_succeed=False,
        )
        assert cloud.api.settled(image_id)["status"] == "active"
    heard = cloud.heard_until(image_id, "task.success")
    assert [summary(n) for n in heard] == [
        *WEB_DOWNLOAD_TO_CENTRAL,
        # recorded with central's location, the activation, and before central left the list
        ("image.upload", "info", "active", ALL, ""),
        ("image.activate", "info", "active", "dcn0,dcn1", ""),
        ("image.update", "info", "active", "dcn0,dcn1", ""),
        ("image.prepare", "info", "active", "dcn0,dcn1", ""),
        ("image.upload", "error", "<message>"),
        ("image.update", "info", "active", "dcn1", "dcn0"),
        ("image.prepare", "info", "active", "dcn1", "dcn0"),
        ("image.upload", "info", "active", "dcn1", "dcn0"),
        ("image.update", "info", "active", "", "dcn0"),
        ("image.update", "info", "active", "", "dcn0"),
        ("task.success", "info", "success"),
    ]
    no_duplicates(heard)
    payloads = [n["payload"] for n in heard]
    assert all(p["id"] == image_id for p in payloads if isinstance(p, dict) and "disk_format" in p)
    assert [p["backend"] for p in payloads if isinstance(p, dict) and "backend" in p] == [
        "central",
        "dcn0",
        "dcn1",
    ]
    assert payloads[5]["disk_format"] == "raw"  # the data update, after conversion
    assert payloads[11].startswith(f"Failed to upload image data for image {image_id} due to")
    assert payloads[-2]["properties"].get(IMPORT_LOCK) is None  # released with the task
    assert payloads[-3]["properties"][IMPORT_LOCK] == heard[1]["payload"]["id"]
    assert {n["publisher_id"] for n in heard} == {"image.localhost"}


def test_web_download_every_store_must_succeed(cloud: Cloud) -> None:
    """dcn0 unwritable, every store must succeed: the failure, the reverts, the end."""
    image_id = cloud.new_image("strict")
    with immutable(cloud.root / "stores" / "dcn0"):
        cloud.import_(
            image_id,
            {"name": "web-download", "uri": f"{cloud.source}/disk.qcow2"},
            stores=list(STORES),
            all_stores_must_succeed=True,
        )
        assert cloud.api.settled(image_id)["status"] == "failed"
    heard = cloud.heard_until(image_id, "task.failure")
    assert [summary(n) for n in heard] == [
        *WEB_DOWNLOAD_TO_CENTRAL,
        ("image.upload", "info", "importing", ALL, ""),
        ("image.update", "info", "importing", "dcn0,dcn1", ""),
        ("image.prepare", "info", "importing", "dcn0,dcn1", ""),
        ("image.upload", "error", "<message>"),
        ("image.update", "info", "importing", "dcn1", "dcn0"),
        # central's copy deleted, then the formats from before the conversion put back
        ("image.update", "info", "importing", "dcn1", "dcn0"),
        ("image.update", "info", "importing", "dcn1", "dcn0"),
        ("image.update", "info", "failed", "", "dcn0"),
        ("task.failure", "info", "failure"),
    ]
    no_duplicates(heard)
    assert heard[-3]["payload"]["disk_format"] == "qcow2"
    assert "image.activate" not in [n["event_type"] for n in heard]


def test_copy_image_then_stores_delete_then_image_delete(cloud: Cloud) -> None:
    image_id = cloud.new_image("copied")
    cloud.import_(
        image_id,
        {"name": "web-download", "uri": f"{cloud.source}/disk.qcow2"},
        stores=["central"],
    )
    assert cloud.api.settled(image_id)["status"] == "active"
    imported = len(cloud.heard_until(image_id, "task.success"))
    cloud.import_(image_id, {"name": "copy-image"}, stores=["dcn0", "dcn1"])
    assert cloud.api.settled(image_id)["stores"] == "central,dcn0,dcn1"
    copied = cloud.heard_until(image_id, "task.success", count=2)[imported:]
    assert [summary(n) for n in copied] == [
        *TASK_START,
        ("image.update", "info", "active", "dcn0,dcn1", ""),
        ("image.update", "info", "active", "dcn0,dcn1", ""),
        ("image.prepare", "info", "active", "dcn0,dcn1", ""),
        ("image.upload", "info", "active", "dcn0,dcn1", ""),
        ("image.update", "info", "active", "dcn1", ""),
        ("image.prepare", "info", "active", "dcn1", ""),
        ("image.upload", "info", "active", "dcn1", ""),
        ("image.update", "info", "active", "", ""),
        ("image.update", "info", "active", "", ""),
        ("task.success", "info", "success"),
    ]
    tasks = cloud.tasks(image_id)
    cloud.call("DELETE", f"/v2/stores/dcn1/{image_id}")
    cloud.call("DELETE", f"/v2/images/{image_id}")
    heard = cloud.heard_until(image_id, "image.delete", tasks=tasks)
    assert [summary(n) for n in heard[imported + len(copied) :]] == [
        ("image.update", "info", "active", "", ""),
        ("image.delete", "info", "deleted", "", ""),
    ]
    deleted = heard[-1]["payload"]
    assert deleted["deleted"] is True and deleted["deleted_at"].endswith("Z")
    no_duplicates(heard)


def test_glance_direct_through_the_api_and_a_download(cloud: Cloud) -> None:
    image_id = cloud.new_image("direct")
    data = (cloud.root / "www" / "disk.qcow2").read_bytes()
    cloud.call("PUT", f"/v2/images/{image_id}/stage", data)
    cloud.import_(image_id, {"name": "glance-direct"}, stores=["central", "dcn1"])
    assert cloud.api.settled(image_id)["status"] == "active"
    downloaded = cloud.call("GET", f"/v2/images/{image_id}/file")
    heard = cloud.heard_until(image_id, "image.send")
    assert [summary(n) for n in heard[:-1]] == [
        ("image.create", "info", "queued", None, None),
        ("image.update", "info", "uploading", None, None),
        *TASK_START,
        ("image.update", "info", "importing", "central,dcn1", ""),
        ("image.update", "info", "importing", "central,dcn1", ""),
        ("image.prepare", "info", "importing", "central,dcn1", ""),
        ("image.upload", "info", "importing", "central,dcn1", ""),
        ("image.update", "info", "importing", "dcn1", ""),
        ("image.prepare", "info", "importing", "dcn1", ""),
        ("image.upload", "info", "active", "dcn1", ""),
        ("image.activate", "info", "active", "", ""),
        ("image.update", "info", "active", "", ""),
        ("image.update", "info", "active", "", ""),
        ("task.success", "info", "success"),
    ]
    assert heard[1]["payload"]["size"] == len(data)
    send = heard[-1]
    assert (send["event_type"], send["priority"]) == ("image.send", "info")
    assert send["payload"] == {
        "bytes_sent": len(downloaded),
        "image_id": image_id,
        "owner_id": "admin",
        "receiver_tenant_id": "admin",
        "receiver_user_id": None,
    }
    no_duplicates(heard)


# -- a worker killed mid-import, a notification broker down ---------------------------------


async def test_no_duplicate_after_a_worker_is_killed_mid_import(
    tmp_path: Path, postgres_url: str, broker_topology: Topology
) -> None:
    """The import is activated, then its worker is killed -9 before dcn0 is recorded; another
    worker resumes the task: every event is heard once, in the order of an undisturbed run.

    Stores in turn, dcn0's write starts as soon as central's ended, while central's record
    waits for the hashes: the kill lands after activation and before dcn0's record, when
    dcn0's data is being written or written but not recorded. All data and no holes, so each
    store's write (disk) takes about as long as the hash pass (CPU) and dcn0 ends well after
    central's record."""
    www = tmp_path / "www"
    www.mkdir()
    make_sparse_raw(www / "big.raw", 768 * MiB, [(0, 768 * MiB)])
    notifications = NotificationTopology()
    config = write_config(tmp_path, postgres_url, broker_topology, lease_seconds=6, concurrency=1)
    with config.open("a") as extra:
        extra.write("\n" + notifications.toml())
    stores = tmp_path / "stores"
    with (
        oslo_listener(notifications, tmp_path) as heard,
        web_source(www) as source,
        running_workers(config, tmp_path, 2) as workers,
    ):
        async with opened(config) as services:
            image = await services.records.catalog.create(
                NewImage(owner=None, name="killed", disk_format="raw", container_format="bare")
            )
            request = ImportRequest(
                method="web-download",
                uri=f"{source}/big.raw",
                stores=("central", "dcn0"),
                all_stores_must_succeed=False,
            )
            task_id = await enqueue(services, image.id, request)

            async def activated() -> bool:
                return (await services.images.get(image.id)).status == "active"

            await until(activated, 120, "the activation", every=0.02)
            holder = (await services.tasks.get(task_id)).claimed_by
            victim = next(w for w in workers if w.name == holder)
            os.kill(victim.process.pid, signal.SIGKILL)
            victim.process.wait()
            # Killed before dcn0 was recorded (the survivor waits for the lease to expire).
            killed = await services.images.get(image.id)
            assert killed.properties[IMPORTING_TO_STORES] == "dcn0"
            assert [location.store for location in killed.locations] == ["central"]
            assert (await terminal(services, task_id)).status == "success"
        # What the killed worker wrote ahead of dcn0's record was replaced, nothing left over.
        assert sorted(path.name for path in (stores / "dcn0").iterdir()) == [image.id]
        survivor = next(w for w in workers if w is not victim)
        assert "taking over task" in survivor.output()
        heard.wait_for(
            lambda all_: any(n["event_type"] == "task.success" for n in all_), "task.success"
        )
        about = heard.about(image.id, (task_id,))
    assert [summary(n) for n in about] == [
        ("image.create", "info", "queued", None, None),
        *TASK_START,
        ("image.update", "info", "importing", "central,dcn0", ""),
        ("image.update", "info", "importing", "central,dcn0", ""),
        ("image.prepare", "info", "importing", "central,dcn0", ""),
        ("image.upload", "info", "active", "central,dcn0", ""),
        ("image.activate", "info", "active", "dcn0", ""),
        ("image.update", "info", "active", "dcn0", ""),
        ("image.prepare", "info", "active", "dcn0", ""),
        ("image.upload", "info", "active", "dcn0", ""),
        ("image.update", "info", "active", "", ""),
        ("image.update", "info", "active", "", ""),
        ("task.success", "info", "success"),
    ]
    no_duplicates(about)


async def test_imports_go_on_while_the_notification_broker_is_down(
    tmp_path: Path, postgres_url: str, broker_topology: Topology
) -> None:
    """Nothing listens where notifications go: the import completes, the metric counts what
    waits, one line logs the outage; once the broker is back everything arrives, in order."""
    www = tmp_path / "www"
    www.mkdir()
    make_sparse_raw(www / "small.raw", 2 * MiB, [(0, MiB)])
    notifications = NotificationTopology()
    with tcp_proxy("127.0.0.1", 5672) as proxy:
        down = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        config = write_config(tmp_path, postgres_url, broker_topology, stores=("central",))
        with config.open("a") as extra:
            extra.write("\n" + notifications.toml(url=down))
        with (
            oslo_listener(notifications, tmp_path) as heard,
            web_source(www) as source,
            running_workers(config, tmp_path, 1) as (worker,),
        ):
            async with opened(config) as services:
                image = await services.records.catalog.create(
                    NewImage(owner=None, name="unheard", disk_format="raw", container_format="bare")
                )
                request = ImportRequest(
                    method="web-download", uri=f"{source}/small.raw", stores=("central",)
                )
                task_id = await enqueue(services, image.id, request)
                assert (await terminal(services, task_id)).status == "success"
                waiting = await services.records.notifications.waiting()
                assert waiting == 12

                async def counted() -> bool:
                    return _metric(worker, "imgworker_notifications_undelivered") == waiting

                await until(counted, 30, "the gauge to count what waits")
                assert _metric(worker, "imgworker_notifications_publish_failures_total") >= 1
                assert heard.about(image.id, (task_id,)) == []
                proxy.start()
                heard.wait_for(
                    lambda _: len(heard.about(image.id, (task_id,))) == waiting, "the backlog"
                )

                async def emptied() -> bool:
                    return _metric(worker, "imgworker_notifications_undelivered") == 0

                await until(emptied, 30, "the gauge to fall to 0")
            about = heard.about(image.id, (task_id,))
            assert [n["event_type"] for n in about] == [
                "image.create",
                "task.create",
                "task.run",
                "task.processing",
                "image.update",
                "image.update",
                "image.prepare",
                "image.upload",
                "image.activate",
                "image.update",
                "image.update",
                "task.success",
            ]
            no_duplicates(about)
            log = worker.output()
            assert log.count("notifications: cannot publish") == 1
            assert log.count("notifications: publishing again") == 1


async def test_the_amqp_messages_are_oslo_s(
    tmp_path: Path, postgres_url: str, broker_topology: Topology
) -> None:
    """Properties and envelope of what we publish, taken off a queue of our own."""
    notifications = NotificationTopology()
    config = write_config(tmp_path, postgres_url, broker_topology, stores=("central",))
    with config.open("a") as extra:
        extra.write("\n" + notifications.toml())
    with oslo_listener(notifications, tmp_path) as heard, running_api(config, tmp_path) as api:
        async with raw_capture(notifications) as captured:
            body = json.dumps({"name": "raw", "disk_format": "raw", "container_format": "bare"})
            request = urllib.request.Request(
                f"{api.url}/v2/images",
                data=body.encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as reply:
                image_id = json.load(reply)["id"]

            async def arrived() -> bool:
                return bool(captured)

            await until(arrived, 30, "the image.create message")
            message = captured[0]
    assert message.routing_key == f"{notifications.topic}.info"
    assert message.exchange == notifications.exchange
    assert message.content_type == "application/json"
    assert message.content_encoding == "utf-8"
    assert message.delivery_mode == 2 and message.priority == 0
    assert message.headers == {}
    outer = json.loads(message.body)
    assert list(outer) == ["oslo.version", "oslo.message"] and outer["oslo.version"] == "2.0"
    inner = json.loads(outer["oslo.message"])
    assert list(inner) == [
        "message_id",
        "publisher_id",
        "event_type",
        "priority",
        "payload",
        "timestamp",
        "_unique_id",
    ]
    assert (inner["event_type"], inner["priority"], inner["payload"]["id"]) == (
        "image.create",
        "INFO",
        image_id,
    )
    assert message.message_id == inner["message_id"]
    (create,) = heard.wait_for(lambda all_: len(all_) == 1, "the listener to hear it")
    assert create["payload"] == inner["payload"]
    assert create["metadata"]["message_id"] == inner["message_id"]


def _metric(worker: Worker, name: str) -> float:
    for family in text_string_to_metric_families(worker.metrics()):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return float("nan")
