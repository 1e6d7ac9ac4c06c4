"""The task message: what DESIGN.md specifies round-trips; every defect has its own reason."""

from __future__ import annotations

import json
import uuid

import pytest

from flows.context import RequestContext
from flows.request import ExpectedChecksum, ImportRequest
from worker.daemon.messages import MessageRejected, TaskMessage, parse_message

STORES = ("central", "dcn0", "dcn1")


def _message() -> TaskMessage:
    request = ImportRequest(
        method="web-download",
        uri="https://example.org/disk.qcow2",
        checksum=ExpectedChecksum("sha256", "ab" * 32),
        stores=("central", "dcn0"),
        all_stores_must_succeed=False,
    )
    context = RequestContext(owner="p1", user_id="u1", request_id="req-1", roles=("member",))
    return TaskMessage(str(uuid.uuid4()), str(uuid.uuid4()), request, context)


def test_round_trip() -> None:
    message = _message()
    body = json.loads(message.to_json())
    assert body["version"] == 1 and body["type"] == "api_image_import"
    assert body["import_req"]["method"]["checksum"] == {"algo": "sha256", "value": "ab" * 32}
    assert parse_message(message.to_json(), STORES) == message


def _mutated(**changes: object) -> bytes:
    body = json.loads(_message().to_json())
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        (b"\xff\xfe", "bad_json", "not JSON"),
        (b"[1, 2]", "bad_json", "not a JSON object"),
        (_mutated(version=2), "bad_version", "version 2 is not 1"),
        (_mutated(task_id="x"), "bad_field", "task_id 'x' is not a UUID"),
        (_mutated(image_id=None), "bad_field", "image_id is missing"),
        (_mutated(type="clone"), "bad_field", "type 'clone'"),
        (_mutated(import_req={"method": {"name": "teleport"}}), "bad_method", "teleport"),
        (
            _mutated(import_req={"method": {"name": "web-download", "uri": "x"}, "stores": 3}),
            "bad_field",
            "stores must be a list",
        ),
        (
            _mutated(import_req={"method": {"name": "copy-image"}, "stores": ["mars"]}),
            "unknown_store",
            "unknown store(s) mars",
        ),
        (_mutated(context={"roles": "admin"}), "bad_field", "context.roles"),
    ],
)
def test_defects_are_rejected_with_their_reason(body: bytes, reason: str, words: str) -> None:
    with pytest.raises(MessageRejected) as rejected:
        parse_message(body, STORES)
    assert rejected.value.reason == reason
    assert words in rejected.value.detail


def test_a_rejection_names_the_task_when_it_can() -> None:
    message = _message()
    with pytest.raises(MessageRejected) as rejected:
        parse_message(_mutated(task_id=message.task_id, version=9), STORES)
    assert rejected.value.task_id == message.task_id
