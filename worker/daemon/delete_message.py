"""The message of a delete task (``image_delete`` / ``store_delete``).

Same envelope as an import's (version, task id, image id, type, context), without an
``import_req``: what to delete is in the task row's input, written in the same transaction
that changed the image record, so the message only says "run this task".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flows.context import RequestContext
from flows.states import TaskType
from worker.daemon.messages import VERSION


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    """A delete task to run."""

    task_id: str
    image_id: str
    type: TaskType
    context: RequestContext

    def to_json(self) -> bytes:
        """The message body as published."""
        body = {
            "version": VERSION,
            "task_id": self.task_id,
            "image_id": self.image_id,
            "type": str(self.type),
            "context": {
                "owner": self.context.owner,
                "user_id": self.context.user_id,
                "request_id": self.context.request_id,
                "is_admin": self.context.is_admin,
                "roles": list(self.context.roles),
            },
        }
        return json.dumps(body, separators=(",", ":")).encode()
