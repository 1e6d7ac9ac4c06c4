"""Who asked: the one caller type, from the API's identity to the flow's context.

The API establishes it for each request (:mod:`worker.api.identity`), decides visibility and
ownership with it, records it on the task rows it creates, and sends it in the task message's
``context``; the worker reads it back from the message and hands it to the flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The caller: their project, user, roles, whether they are an admin, the request's id."""

    project_id: str | None = None
    user_id: str | None = None
    request_id: str | None = None
    is_admin: bool = False
    roles: tuple[str, ...] = ()
    #: The caller's Keystone token, for services the import must act on as them
    #: (Barbican); only present when the API sent it (docs/keystone.md). Never logged.
    token: str | None = field(default=None, repr=False)

    def without_token(self) -> RequestContext:
        """The same caller with no token (what a message carries unless it must act as them)."""
        return replace(self, token=None)
