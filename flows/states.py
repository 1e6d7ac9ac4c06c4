"""Every status, task type and step result, declared once (taskflow's ``states.py`` idea).

They are :class:`enum.StrEnum` members, so they compare equal to the strings stored in the
records (Glance's own words) and can be written to them as they are.
"""

from __future__ import annotations

from enum import StrEnum


class ImageStatus(StrEnum):
    """``images.status``: Glance's image statuses, plus ``failed`` (the guide's word)."""

    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    FAILED = "failed"
    KILLED = "killed"
    DEACTIVATED = "deactivated"
    DELETED = "deleted"
    PENDING_DELETE = "pending_delete"


class TaskStatus(StrEnum):
    """``tasks.status``: Glance's task statuses."""

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILURE = "failure"


#: Statuses a task never leaves.
TERMINAL_TASK_STATUSES = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILURE})


def is_terminal(status: str) -> bool:
    """Tell whether a task status read from the records is terminal."""
    return status in TERMINAL_TASK_STATUSES


class TaskType(StrEnum):
    """``tasks.type``: what a task does."""

    #: Glance's interoperable import (web-download, glance-direct, copy-image).
    IMPORT = "api_image_import"
    #: Remove every location's data of a deleted image.
    IMAGE_DELETE = "image_delete"
    #: Remove one store's data of an image (``stores-delete``).
    STORE_DELETE = "store_delete"


#: Task types whose work is removing data (their message carries no request: what to delete
#: is in the task row).
DELETE_TASK_TYPES = (TaskType.IMAGE_DELETE, TaskType.STORE_DELETE)


class LocationStatus(StrEnum):
    """``image_locations.status``."""

    ACTIVE = "active"
    #: Forgotten by the image; its data is (being) removed by a delete task.
    PENDING_DELETE = "pending_delete"
    DELETED = "deleted"


class MemberStatus(StrEnum):
    """``image_members.status``: whether the project an image is shared with accepted it."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class StepResult(StrEnum):
    """How one step run, or one store write, ended (the ``result`` label of their metrics)."""

    SUCCESS = "success"
    FAILURE = "failure"
    REVERTED = "reverted"
    REVERT_FAILED = "revert_failed"


class AttemptStatus(StrEnum):
    """How one attempt at a task ended, as the daemon settles its message."""

    SUCCESS = "success"
    FAILURE = "failure"
    #: A transient failure: put the task back and let the message be delivered again.
    RETRY = "retry"
    #: Not done yet, and not the message's business: the task is pending again and the
    #: sweeper publishes it once its retry delay has passed (deletions retry forever).
    DEFERRED = "deferred"
