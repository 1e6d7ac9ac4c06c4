"""The events Glance's notifier announces, and what a flow tells its caller to announce.

Glance sends one notification per step of an image's life (``glance/notifier.py``); the
OpenStack services that listen to them (telemetry, billing, auditing, search) know these
event types by name. They are declared once here. A flow never sends anything: at the
moments Glance's import would, it hands an :class:`Announcement` to its
:class:`~flows.ports.ImageEvents` port, and the worker records it with the image as it is then.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import StrEnum


class EventType(StrEnum):
    """A notification's ``event_type``, Glance's words."""

    IMAGE_CREATE = "image.create"
    IMAGE_UPDATE = "image.update"
    #: An import comes to one store (its step starts; written in turn, the data may already
    #: be on its way).
    IMAGE_PREPARE = "image.prepare"
    #: A store received the data (or, at ``error`` priority, could not).
    IMAGE_UPLOAD = "image.upload"
    IMAGE_ACTIVATE = "image.activate"
    IMAGE_DELETE = "image.delete"
    #: The data was downloaded.
    IMAGE_SEND = "image.send"
    #: A project was added to an image's members, changed its status, or was removed.
    IMAGE_MEMBER_CREATE = "image.member.create"
    IMAGE_MEMBER_UPDATE = "image.member.update"
    IMAGE_MEMBER_DELETE = "image.member.delete"
    TASK_CREATE = "task.create"
    #: The task was handed to the workers.
    TASK_RUN = "task.run"
    TASK_PROCESSING = "task.processing"
    TASK_SUCCESS = "task.success"
    TASK_FAILURE = "task.failure"


class Priority(StrEnum):
    """A notification's ``priority`` (its topic is ``<topic>.<priority in lower case>``)."""

    INFO = "INFO"
    ERROR = "ERROR"


class UploadFailureKind(StrEnum):
    """How Glance words a failed store write, chosen by the error (see :func:`failure_kind`)."""

    #: ``StorageFull``: "Image storage media is full: ..."
    FULL = "full"
    #: ``StorageWriteDenied``: "Insufficient permissions on image storage media: ..."
    DENIED = "denied"
    #: Anything else: "Failed to upload image data for image ... due to internal error: ..."
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class UploadFailure:
    """Why a store could not be written: sent as ``image.upload`` at ``error`` priority."""

    kind: UploadFailureKind
    detail: str


@dataclass(frozen=True, slots=True)
class Announcement:
    """One event of an import, at the moment the flow reaches it.

    ``moment`` names the point of the flow (``start``, ``store:central``, ...): an import task
    announces each (event, moment) once, so a task resumed by another worker after a crash
    repeats none of what the dead attempt already announced.
    """

    event: EventType
    moment: str
    #: The store being written (``image.prepare`` carries it as ``backend``).
    store: str | None = None
    failure: UploadFailure | None = None


class NullEvents:
    """Announces nothing (the default outside the worker, and with notifications off)."""

    async def announce(self, task_id: str, image_id: str, announcement: Announcement) -> None:
        """Ignore."""


def failure_kind(error: BaseException) -> UploadFailureKind:
    """Glance's classification of a store error, by the operating system's error number.

    Glance's file store raises ``StorageFull`` for ENOSPC and EFBIG and
    ``StorageWriteDenied`` for EACCES; every other error is an "internal error".
    """
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__
    number = cause.errno if isinstance(cause, OSError) else None
    if number in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return UploadFailureKind.FULL
    if number == errno.EACCES:
        return UploadFailureKind.DENIED
    return UploadFailureKind.INTERNAL
