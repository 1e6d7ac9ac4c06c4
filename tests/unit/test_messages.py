"""The task message: what DESIGN.md specifies round-trips; every defect has its own reason.

The property tests feed ``parse_message`` arbitrary bytes, arbitrary JSON and arbitrary
mutations of a valid message: it returns a valid message or raises ``MessageRejected``,
never anything else (anything else would be retried as if transient).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.request import ExpectedChecksum, ImportRequest
from flows.requester import RequestContext
from worker.daemon.messages import (
    MAX_MESSAGE_BYTES,
    MAX_NESTING,
    MessageRejected,
    RejectReason,
    TaskMessage,
    parse_message,
)

STORES = ("central", "dcn0", "dcn1")


def _message() -> TaskMessage:
    request = ImportRequest(
        method="web-download",
        uri="https://example.org/disk.qcow2",
        checksum=ExpectedChecksum("sha256", "ab" * 32),
        stores=("central", "dcn0"),
        all_stores_must_succeed=False,
    )
    context = RequestContext(project_id="p1", user_id="u1", request_id="req-1", roles=("member",))
    return TaskMessage(str(uuid.uuid4()), str(uuid.uuid4()), request, context)


def test_round_trip() -> None:
    message = _message()
    body = json.loads(message.to_json())
    assert body["version"] == 1 and body["type"] == "api_image_import"
    assert body["import_req"]["method"]["checksum"] == {"algo": "sha256", "value": "ab" * 32}
    assert parse_message(message.to_json(), STORES) == message


def test_the_requesters_token_travels_only_when_set_and_is_never_shown() -> None:
    message = _message()
    assert "token" not in json.loads(message.to_json())["context"]
    context = RequestContext(project_id="p1", user_id="u1", roles=("member",), token="gAAAA-secret")
    signed = TaskMessage(message.task_id, message.image_id, message.request, context)
    assert json.loads(signed.to_json())["context"]["token"] == "gAAAA-secret"
    parsed = parse_message(signed.to_json(), STORES)
    assert parsed.context.token == "gAAAA-secret"
    assert "gAAAA-secret" not in repr(parsed)


def _mutated(**changes: object) -> bytes:
    """A valid message with ``changes`` applied at the top level."""
    body = json.loads(_message().to_json())
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        (b"\xff\xfe", "bad_json", "not UTF-8"),
        (b"{not json", "bad_json", "not JSON"),
        ('{"a": "\u00e9"}'.encode("utf-16"), "bad_json", "not UTF-8"),
        (b"1" * 5000, "bad_json", "not JSON"),
        (b"[" * 200_000, "too_large", "more than [broker] max_message_bytes = 65536"),
        (b"[" * 60_000, "too_deep", f"more than {MAX_NESTING} deep"),
        (b'{"a":' * 1000 + b"1" + b"}" * 1000, "too_deep", "nests"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "too_large", f"{MAX_MESSAGE_BYTES + 1} bytes"),
        (_mutated(version=True), "bad_version", "version True is not 1"),
        (_mutated(version=1.0), "bad_version", "version 1.0 is not 1"),
        (_mutated(task_id=7), "bad_field", "task_id 7 is not a UUID"),
        (_mutated(type=["api_image_import"]), "bad_field", "type ['api_image_import']"),
        (_mutated(context={"is_admin": "yes"}), "bad_field", "context.is_admin"),
        (_mutated(context={"roles": 0}), "bad_field", "context.roles"),
        (_mutated(context={"owner": 5}), "bad_field", "context.owner"),
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
        (_mutated(context={"token": ["t"]}), "bad_field", "context.token must be a string"),
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


def test_nesting_inside_strings_does_not_count() -> None:
    message = _message()
    body = json.loads(message.to_json())
    body["context"]["request_id"] = "[{" * 1000
    parsed = parse_message(json.dumps(body).encode(), STORES)
    assert parsed.context.request_id == "[{" * 1000


def test_the_size_cap_is_a_parameter() -> None:
    body = _message().to_json()
    with pytest.raises(MessageRejected) as rejected:
        parse_message(body, STORES, max_bytes=len(body) - 1)
    assert rejected.value.reason == RejectReason.TOO_LARGE
    assert parse_message(body, STORES, max_bytes=len(body)).task_id == _task_id(body)


def _task_id(body: bytes) -> str:
    return str(json.loads(body)["task_id"])


# Property tests ---------------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Any JSON value (hypothesis builds deep and wide ones, strings with any code point).
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=25,
)
FIELDS = ("version", "task_id", "image_id", "type", "import_req", "context")


def _valid_or_rejected(body: bytes) -> None:
    """The property: a valid message, or MessageRejected with a known reason."""
    try:
        parsed = parse_message(body, STORES)
    except MessageRejected as rejected:
        assert rejected.reason in set(RejectReason)
        assert rejected.detail
        return
    assert isinstance(parsed, TaskMessage)
    assert uuid.UUID(parsed.task_id) and uuid.UUID(parsed.image_id)
    assert all(store in STORES for store in parsed.request.stores)


@PROPERTY
@given(st.binary(max_size=4096))
def test_any_bytes(body: bytes) -> None:
    _valid_or_rejected(body)


@PROPERTY
@given(JSON_VALUES)
def test_any_json(value: Any) -> None:
    _valid_or_rejected(json.dumps(value).encode())


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.lists(
                st.sampled_from((*FIELDS, "method", "checksum", "stores", "roles")), max_size=3
            ),
            JSON_VALUES,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_mutation_of_a_valid_message(edits: list[tuple[list[str], Any]]) -> None:
    body = json.loads(_message().to_json())
    for path, value in edits:
        _set_path(body, path, value)
    _valid_or_rejected(json.dumps(body).encode())


def _set_path(body: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``value`` at ``path`` (or delete it when ``value`` is None), creating objects."""
    node: Any = body
    for key in path[:-1]:
        child = node.get(key) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    key = path[-1] if path else "version"
    if value is None:
        node.pop(key, None)
    else:
        node[key] = value


@PROPERTY
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0), st.data())
def test_any_byte_splice_into_a_valid_message(
    insert: bytes, position: int, data: st.DataObject
) -> None:
    body = _message().to_json()
    at = position % (len(body) + 1)
    cut = data.draw(st.integers(min_value=0, max_value=len(body) - at))
    _valid_or_rejected(body[:at] + insert + body[at + cut :])


@PROPERTY
@given(st.integers(min_value=1, max_value=100_000), st.sampled_from("[{"))
def test_any_nesting_depth(depth: int, opener: str) -> None:
    item = {"[": "[", "{": '{"k":'}[opener]
    closer = {"[": "]", "{": "}"}[opener]
    body = (item * depth + "0" + closer * depth).encode()
    try:
        parse_message(body, STORES, max_bytes=len(body))
    except MessageRejected as rejected:
        assert (rejected.reason == RejectReason.TOO_DEEP) == (depth > MAX_NESTING)
