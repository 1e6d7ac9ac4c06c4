"""inject_image_metadata: configured properties set, unless the requester has an exempt role."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from flows.config import FlowSettings
from flows.context import ImportContext
from flows.records import ImageRecord
from flows.request import ImportRequest
from flows.requester import RequestContext
from flows.steps.inject_metadata import InjectMetadataStep
from tests.support.fakes import MemoryImages, MemoryTasks
from worker.api.identity import identity
from worker.daemon.messages import TaskMessage, parse_message


def _context(tmp_path: Path, requester: RequestContext) -> tuple[ImportContext, MemoryImages]:
    images = MemoryImages()
    images.put(
        ImageRecord(
            id="img",
            name=None,
            status="importing",
            disk_format="raw",
            container_format="bare",
            properties={"hw_disk_bus": "ide"},
        )
    )
    settings = FlowSettings(
        staging_dir=tmp_path,
        inject_properties={"hw_disk_bus": "virtio", "company": "acme"},
        inject_ignore_roles=("admin", "image-admin"),
    )
    ctx = ImportContext(
        task_id="t",
        image_id="img",
        worker_id="w",
        request=ImportRequest(method="web-download", uri="http://example.org/x"),
        images=images,
        tasks=MemoryTasks(),
        stores={},
        default_store="default",
        settings=settings,
        requester=requester,
    )
    return ctx, images


async def test_properties_are_injected_over_the_users_values(tmp_path: Path) -> None:
    ctx, images = _context(tmp_path, RequestContext(roles=("member",)))
    await InjectMetadataStep().execute(ctx)
    properties = images.images["img"].properties
    assert properties["hw_disk_bus"] == "virtio"
    assert properties["company"] == "acme"


@pytest.mark.parametrize(
    "requester",
    [RequestContext(roles=("member", "image-admin")), RequestContext(is_admin=True)],
)
async def test_exempt_roles_are_left_alone(tmp_path: Path, requester: RequestContext) -> None:
    ctx, images = _context(tmp_path, requester)
    await InjectMetadataStep().execute(ctx)
    assert images.images["img"].properties == {"hw_disk_bus": "ide"}


@pytest.mark.parametrize(
    ("roles", "injected"),
    [(("admin", "manager", "member", "reader"), False), (("member", "reader"), True)],
)
async def test_the_roles_keystone_gave_the_api_decide_in_the_worker(
    tmp_path: Path, roles: tuple[str, ...], injected: bool
) -> None:
    """Roles go API identity -> task message -> worker context, unchanged."""
    caller = identity(project_id="p1", user_id="u1", roles=roles, request_id="req-1")
    sent = TaskMessage(
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        ImportRequest(method="web-download", uri="http://example.org/x"),
        caller.without_token(),
    )
    received = parse_message(sent.to_json(), ("default",))
    assert received.context.roles == roles
    ctx, images = _context(tmp_path, received.context)
    await InjectMetadataStep().execute(ctx)
    assert (images.images["img"].properties["hw_disk_bus"] == "virtio") is injected
