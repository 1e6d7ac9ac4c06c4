"""oslo.messaging's notification as it travels: the message and its v2 envelope.

What Glance's ``messagingv2`` driver publishes over RabbitMQ, as captured off the queue from
a live Glance 33 (docs/notifications.md): a JSON object ``{"oslo.version": "2.0",
"oslo.message": "<JSON text>"}`` whose inner message holds ``message_id``,
``publisher_id``, ``event_type``, ``priority`` (upper case), ``payload``, ``timestamp``
(``str()`` of a naive UTC datetime) and the AMQP driver's ``_unique_id``, in that order.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from worker.db.notifications import Pending

#: The envelope's version: the messaging v2 format every oslo.messaging listener decodes.
OSLO_VERSION = "2.0"
#: AMQP properties of every notification, as kombu sets them for oslo.messaging.
CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"


def oslo_timestamp(moment: datetime) -> str:
    """``str(timeutils.utcnow())``: ``2026-11-25 16:24:26.765745`` (UTC, no zone)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return str(moment)


def oslo_message(row: Pending, publisher_id: str) -> dict[str, Any]:
    """The notification as oslo.messaging's ``Notifier`` builds it (what a listener gets)."""
    return {
        "message_id": row.message_id,
        "publisher_id": publisher_id,
        "event_type": row.event_type,
        "priority": row.priority,
        "payload": row.payload,
        "timestamp": oslo_timestamp(row.created_at),
    }


def envelope(message: dict[str, Any]) -> bytes:
    """The AMQP body: the message (with ``_unique_id``) serialised inside the v2 envelope.

    ``_unique_id`` is derived from ``message_id``, so a notification published again after a
    relay died between the broker's confirm and marking it sent carries the same one: an
    oslo.messaging listener that already took it drops the copy as a duplicate.
    """
    inner = {**message, "_unique_id": uuid.UUID(message["message_id"]).hex}
    return json.dumps({"oslo.version": OSLO_VERSION, "oslo.message": json.dumps(inner)}).encode()
