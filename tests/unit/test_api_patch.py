"""JSON patches of images: Glance's two media types, what may change and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from flows.records import ImageRecord
from flows.requester import RequestContext
from worker.api.errors import ApiError
from worker.api.identity import identity
from worker.api.patch import PATCH_V20, PATCH_V21, parse_operations, plan_changes
from worker.config.settings import ApiSettings

MEMBER = identity("p1", "u1", ("member", "reader"), "req-1")
IMAGE = ImageRecord(
    id="8b6a1f0e-3f1c-4f7a-9d0e-1f2a3b4c5d6e",
    name="cirros",
    status="active",
    disk_format="raw",
    container_format="bare",
    owner="p1",
    properties={"architecture": "x86_64", "os_glance_import_task": "t1"},
    tags=("a",),
)


def plan(
    ops: list[dict[str, Any]], identity: RequestContext = MEMBER, media: str = PATCH_V21
) -> Any:
    return plan_changes(IMAGE, parse_operations(ops, media), ApiSettings(), identity)


def refused(ops: list[dict[str, Any]], identity: RequestContext = MEMBER) -> ApiError:
    with pytest.raises(ApiError) as caught:
        plan(ops, identity)
    return caught.value


def test_add_replace_remove_properties_and_core_attributes() -> None:
    changes = plan(
        [
            {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
            {"op": "replace", "path": "/architecture", "value": "aarch64"},
            {"op": "replace", "path": "/name", "value": "cirros-2"},
            {"op": "replace", "path": "/os_hidden", "value": True},
            {"op": "replace", "path": "/tags", "value": ["b", "b", "c"]},
        ]
    )
    assert changes.core == {"name": "cirros-2", "os_hidden": True}
    assert changes.set_properties == {"hw_disk_bus": "virtio", "architecture": "aarch64"}
    assert changes.remove_properties == ()
    assert changes.tags == ("b", "c")


def test_remove_then_add_back_is_a_set_and_the_service_properties_are_untouched() -> None:
    changes = plan(
        [
            {"op": "remove", "path": "/architecture"},
            {"op": "add", "path": "/architecture", "value": "ppc64"},
        ]
    )
    assert changes.remove_properties == ()
    assert changes.set_properties == {"architecture": "ppc64"}
    removed = plan([{"op": "remove", "path": "/architecture"}])
    assert removed.remove_properties == ("architecture",)
    assert "os_glance_import_task" not in removed.set_properties


def test_the_v20_media_type() -> None:
    changes = plan([{"replace": "/name", "value": "x"}], media=PATCH_V20)
    assert changes.core == {"name": "x"}


@pytest.mark.parametrize(
    ("ops", "status", "words"),
    [
        ([{"op": "replace", "path": "/missing", "value": "x"}], 409, "does not exist"),
        ([{"op": "remove", "path": "/missing"}], 409, "does not exist"),
        ([{"op": "remove", "path": "/name"}], 403, "cannot be removed"),
        ([{"op": "add", "path": "/os_glance_import_task", "value": "x"}], 403, "reserved"),
        ([{"op": "replace", "path": "/status", "value": "active"}], 403, "read-only"),
        ([{"op": "replace", "path": "/checksum", "value": "0"}], 403, "read-only"),
        ([{"op": "replace", "path": "/id", "value": "x"}], 403, "read-only"),
        ([{"op": "add", "path": "/locations", "value": []}], 403, "reserved"),
        ([{"op": "add", "path": "/architecture", "value": 5}], 400, "string"),
        ([{"op": "replace", "path": "/min_disk", "value": -1}], 400, "at least 0"),
        ([{"op": "replace", "path": "/protected", "value": "yes"}], 400, "true or false"),
        ([{"op": "replace", "path": "/visibility", "value": "galaxy"}], 400, "visibility"),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], 400, "disk format"),
        ([{"op": "move", "path": "/name", "value": "x"}], 400, "Unknown patch operation"),
        ([{"op": "add", "path": "/name"}], 400, "needs a 'value'"),
        ([{"op": "add", "path": "name", "value": "x"}], 400, "Invalid patch path"),
        ([{"op": "add", "path": "/a/b", "value": "x"}], 403, "whole attributes"),
        (["not an object"], 400, "JSON object"),
    ],
)
def test_refusals_say_what_is_wrong(ops: list[Any], status: int, words: str) -> None:
    error = refused(ops)
    assert error.status == status
    assert words in error.message


def test_visibility_is_planned_for_the_policy_to_judge_and_a_patch_must_be_a_list() -> None:
    # Whether the caller may publicize is the publicize_image rule's answer (tests/unit/
    # test_policy_api.py), checked by the handler with the image as target.
    assert plan([{"op": "replace", "path": "/visibility", "value": "public"}]).core == {
        "visibility": "public"
    }
    with pytest.raises(ApiError, match="list of operations"):
        parse_operations({"op": "add"}, PATCH_V21)


def test_a_pointer_escape_names_the_attribute() -> None:
    changes = plan([{"op": "add", "path": "/a~1b~0c", "value": "v"}])
    assert changes.set_properties == {"a/b~c": "v"}
