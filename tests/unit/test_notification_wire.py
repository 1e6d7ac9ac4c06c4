"""Our notifications, byte for byte against what a live Glance 33 published.

``glance33_notifications.jsonl`` was taken off a RabbitMQ queue bound to Glance's exchange
while ``shared/bench/glance-peer`` imported a qcow2 by web-download into central, dcn0
(unwritable) and dcn1, failure allowed (docs/notifications.md). Built from the same facts,
ours must be the same text; only ``_unique_id`` differs (Glance draws it at random, ours is
the message id's hex).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows.events import Announcement, EventType, UploadFailure, UploadFailureKind
from flows.records import FAILED_IMPORT, IMPORT_LOCK, IMPORTING_TO_STORES, ImageRecord
from worker.db.notifications import Pending
from worker.db.payloads import announced, isotime
from worker.notifications.sinks import amqp_url
from worker.notifications.wire import (
    CONTENT_ENCODING,
    CONTENT_TYPE,
    envelope,
    oslo_message,
    oslo_timestamp,
)

#: Every message Glance 33 published during that import, as captured: routing key, exchange,
#: AMQP properties and body (one JSON object per line).
CAPTURE = Path(__file__).with_name("glance33_notifications.jsonl")


def captured() -> list[dict[str, Any]]:
    """The captured messages, in the order Glance published them."""
    return [json.loads(line) for line in CAPTURE.read_text().splitlines()]


GLANCE_UPLOAD = captured()[6]["body"]
GLANCE_UPLOAD_FAILED = captured()[10]["body"]
IMAGE_ID = "a87ecc1d-58ad-4ba2-b1a4-05a8980a6e30"


def image_at_upload() -> ImageRecord:
    """The image as Glance's payload above describes it."""
    return ImageRecord(
        id=IMAGE_ID,
        name="peer",
        status="active",
        disk_format="raw",
        container_format="bare",
        owner="bench",
        size=33554432,
        virtual_size=33554432,
        checksum="9cfb4d822a6576955314bf0c18d138ad",
        properties={
            IMPORT_LOCK: "8ba8c2fe-c474-42db-b083-d1547bcd944a",
            IMPORTING_TO_STORES: "central,dcn0,dcn1",
            FAILED_IMPORT: "",
        },
        created_at=datetime(2026, 11, 25, 16, 24, 25, 412000, tzinfo=UTC),
        updated_at=datetime(2026, 11, 25, 16, 24, 26, 700000, tzinfo=UTC),
    )


def ours(glance_body: str, announcement: Announcement) -> tuple[str, str]:
    """Our body for the same event (same message id and time) and Glance's, each with its
    ``_unique_id`` blanked."""
    inner = json.loads(json.loads(glance_body)["oslo.message"])
    priority, payload = announced(image_at_upload(), announcement)
    row = Pending(
        id=1,
        message_id=inner["message_id"],
        image_id=IMAGE_ID,
        event_type=announcement.event,
        priority=priority,
        payload=payload,
        # SQLite gives naive UTC datetimes back; PostgreSQL aware ones: both read as UTC.
        created_at=datetime.strptime(inner["timestamp"], "%Y-%m-%d %H:%M:%S.%f"),
    )
    body = envelope(oslo_message(row, "image.localhost")).decode()
    return _blank(body), _blank(glance_body)


def _blank(body: str) -> str:
    outer = json.loads(body)
    inner = json.loads(outer["oslo.message"])
    assert len(inner["_unique_id"]) == 32
    inner["_unique_id"] = "-"
    return json.dumps({**outer, "oslo.message": json.dumps(inner)})


def test_an_upload_is_glance_s_text() -> None:
    mine, glance = ours(GLANCE_UPLOAD, Announcement(EventType.IMAGE_UPLOAD, "store:central"))
    assert mine == glance


def test_a_failed_upload_is_glance_s_sentence_at_error_priority() -> None:
    detail = f"[Errno 1] Operation not permitted: '/tmp/notify-glance/peer/stores/dcn0/{IMAGE_ID}'"
    failure = UploadFailure(UploadFailureKind.INTERNAL, detail)
    announcement = Announcement(EventType.IMAGE_UPLOAD, "store:dcn0:failed", failure=failure)
    mine, glance = ours(GLANCE_UPLOAD_FAILED, announcement)
    assert mine == glance


def test_prepare_names_the_store_being_written() -> None:
    _priority, payload = announced(
        image_at_upload(), Announcement(EventType.IMAGE_PREPARE, "store:dcn0", store="dcn0")
    )
    assert isinstance(payload, dict)
    assert payload["backend"] == "dcn0"
    assert payload[IMPORTING_TO_STORES] == ["central", "dcn0", "dcn1"]
    assert payload[FAILED_IMPORT] == []


def test_an_update_has_no_lists_of_its_own() -> None:
    _priority, payload = announced(image_at_upload(), Announcement(EventType.IMAGE_UPDATE, "x"))
    assert isinstance(payload, dict)
    assert IMPORTING_TO_STORES not in payload and "backend" not in payload
    assert payload["properties"][IMPORTING_TO_STORES] == "central,dcn0,dcn1"


def test_unique_id_is_the_message_id_so_a_resend_is_a_duplicate_to_oslo() -> None:
    row = Pending(1, "666d6e1a-3087-4e7d-96ed-ac398c78cdb2", None, "image.update", "INFO", {}, _T)
    message = oslo_message(row, "image.localhost")
    first, again = envelope(message), envelope(message)
    assert first == again
    inner = json.loads(json.loads(first)["oslo.message"])
    assert inner["_unique_id"] == "666d6e1a30874e7d96edac398c78cdb2"


_T = datetime(2026, 11, 25, 16, 24, 26, tzinfo=UTC)


def test_times_are_oslo_s() -> None:
    assert isotime(datetime(2026, 11, 25, 16, 24, 26, 999999, tzinfo=UTC)) == "2026-11-25T16:24:26Z"
    assert isotime(datetime(2026, 11, 25, 16, 24, 26)) == "2026-11-25T16:24:26Z"
    assert oslo_timestamp(datetime(2026, 11, 25, 16, 24, 26, 5, tzinfo=UTC)) == (
        "2026-11-25 16:24:26.000005"
    )
    assert oslo_timestamp(_T) == "2026-11-25 16:24:26"


def test_oslo_s_rabbit_url_is_an_amqp_url() -> None:
    assert amqp_url("rabbit://guest:guest@host:5672/") == "amqp://guest:guest@host:5672/"
    assert amqp_url("amqps://u:p@host/vhost") == "amqps://u:p@host/vhost"


def test_the_amqp_properties_are_kombu_s() -> None:
    for message in captured():
        assert message["exchange"] == "glance"
        assert message["routing_key"] in ("notifications.info", "notifications.error")
        assert message["properties"] == {
            "content_type": CONTENT_TYPE,
            "content_encoding": CONTENT_ENCODING,
            "application_headers": {},
            "delivery_mode": 2,
            "priority": 0,
        }
