"""What every metadef handler needs: the caller as the catalogue sees them, the namespace of
the path with its policy target, the limit that applies, and Glance's answers to refusals."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from flows.requester import RequestContext
from worker.api.errors import ApiError, bad_request, forbidden
from worker.api.identity import identity_of
from worker.api.policy import Hidden, allowed, enforce, own_project
from worker.api.state import ApiState, state_of
from worker.db.metadefs.catalog import MetadefCatalog
from worker.db.metadefs.definitions import InvalidDefinition
from worker.db.metadefs.records import (
    MetadefDuplicate,
    MetadefError,
    MetadefLimitReached,
    MetadefMissing,
    MetadefProtected,
    Namespace,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS: tuple[tuple[type[MetadefError], int], ...] = (
    (MetadefMissing, 404),
    (MetadefDuplicate, 409),
    (MetadefProtected, 403),
    (MetadefLimitReached, 413),
)


def answering(handler: Handler) -> Handler:
    """Turn the catalogue's refusals and bad definitions into Glance's answers."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except MetadefError as error:
            status = next(code for kind, code in _STATUS if isinstance(error, kind))
            raise ApiError(status, str(error)) from error
        except InvalidDefinition as error:
            raise bad_request(f"The metadef definition is not valid: {error}.") from error
        except PermissionError as error:
            raise forbidden(str(error)) from error

    return answer


def catalog_of(request: web.Request) -> MetadefCatalog:
    """The metadef catalogue."""
    return state_of(request).metadefs


def viewer_of(request: web.Request) -> RequestContext:
    """The caller as Glance's database layer sees them: admin = the ``context_is_admin`` rule."""
    caller = identity_of(request)
    return replace(caller, is_admin=allowed(request, "context_is_admin"))


def limit_of(request: web.Request, state: ApiState) -> int | None:
    """Records a project may own, for this caller (None: not limited)."""
    limit = state.settings.metadefs.project_limit
    if limit < 0 or allowed(request, "context_is_admin"):
        return None
    return limit


def target_of(namespace: Namespace) -> dict[str, Any]:
    """Glance's metadef target: the namespace's owner and visibility."""
    return {"project_id": namespace.owner, "visibility": namespace.visibility}


def name_of(request: web.Request) -> str:
    """The namespace named by the path."""
    return request.match_info["namespace"]


@dataclass(frozen=True, slots=True)
class Namespaced:
    """A request about one namespace the caller may see."""

    request: web.Request
    namespace: Namespace
    viewer: RequestContext

    @classmethod
    async def of(cls, request: web.Request) -> Namespaced:
        """The namespace of the path (404 unless the catalogue shows it to the caller)."""
        viewer = viewer_of(request)
        namespace = await catalog_of(request).namespace(name_of(request), viewer)
        return cls(request, namespace, viewer)

    @property
    def name(self) -> str:
        """The namespace's name."""
        return self.namespace.namespace

    def enforce(self, *rules: str) -> None:
        """Each rule on the namespace, hidden (404) from who may not see it."""
        hidden = Hidden("get_metadef_namespace", f"Namespace {self.name} not found")
        for rule in rules:
            enforce(self.request, rule, target_of(self.namespace), hidden)

    @property
    def limit(self) -> int | None:
        """The limit for this caller."""
        return limit_of(self.request, state_of(self.request))


def enforce_on_collection(request: web.Request, *rules: str) -> None:
    """Rules of lists and creations: the target is the caller's own project."""
    for rule in rules:
        enforce(request, rule, own_project(identity_of(request)))


def own_owner(request: web.Request, owner: str) -> None:
    """Only an admin puts a namespace in another project (and charges that project's limit)."""
    caller = identity_of(request)
    if owner != caller.project_id and not allowed(request, "context_is_admin"):
        raise forbidden(
            f"You may not give a namespace to project {owner}: only an admin may (leave out "
            "owner to keep it in your project)."
        )
