"""What the API returns validates against the schemas it serves (as the clients check)."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import pytest

from flows.records import ImageRecord, Location, TaskRecord
from flows.states import ImageStatus
from worker.api.schemas import image_schema, images_schema, task_schema
from worker.api.views import image_view, task_view
from worker.config.settings import ApiSettings

WHEN = datetime(2026, 11, 25, 15, 12, 42, 123456, tzinfo=UTC)


def _image(status: str) -> ImageRecord:
    return ImageRecord(
        id="8b6a1f0e-3f1c-4f7a-9d0e-1f2a3b4c5d6e",
        name="cirros",
        status=status,
        disk_format="raw",
        container_format="bare",
        owner="p1",
        size=10,
        virtual_size=10,
        checksum="0" * 32,
        os_hash_algo="sha512",
        os_hash_value="f" * 128,
        properties={"os_glance_failed_import": "dcn0", "architecture": "x86_64"},
        locations=(Location("file:///s/central/x", "central"),),
        tags=("a",),
        created_at=WHEN,
        updated_at=WHEN,
    )


@pytest.mark.parametrize("status", [s.value for s in ImageStatus])
def test_every_status_validates_including_failed(status: str) -> None:
    api = ApiSettings()
    view = image_view(_image(status), show_locations=True)
    jsonschema.validate(view, image_schema(api))
    jsonschema.validate(
        {"images": [view], "first": "/v2/images", "schema": "x"}, images_schema(api)
    )


def test_image_view_is_glances_shape() -> None:
    view = image_view(_image("active"), show_locations=False)
    assert view["created_at"] == "2026-11-25T15:12:42Z"
    assert view["stores"] == "central"
    assert view["architecture"] == "x86_64"
    assert view["self"] == f"/v2/images/{view['id']}"
    assert "locations" not in view


def test_a_refused_format_fails_the_schema_the_client_downloads() -> None:
    api = ApiSettings(disk_formats=("raw", "qcow2"))
    view = image_view(_image("active"), show_locations=False)
    view["disk_format"] = "vmdk"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(view, image_schema(api))


def test_task_view_validates_even_without_an_owner() -> None:
    task = TaskRecord(
        id="0b6a1f0e-3f1c-4f7a-9d0e-1f2a3b4c5d6e",
        type="image_delete",
        status="pending",
        image_id="8b6a1f0e-3f1c-4f7a-9d0e-1f2a3b4c5d6e",
        created_at=WHEN,
        updated_at=WHEN,
    )
    view = task_view(task)
    jsonschema.validate(view, task_schema())
    assert view["created_at"] == "2026-11-25T15:12:42.123456"
