"""Who is calling: the identity of each request, by ``[api] auth``.

- ``none``: Glance's unauthenticated context, made usable: every caller is an admin of
  ``[api] default_project`` (a laptop, a test); served on loopback only unless the operator
  says otherwise (:mod:`worker.api.exposure`).
- ``headers``: an authenticating proxy in front (keystonemiddleware's contract) sets
  ``X-Identity-Status: Confirmed``, ``X-Project-Id``, ``X-User-Id`` and ``X-Roles``; a request
  without them is refused with 401, and so is one from a peer that is not a trusted proxy
  (:mod:`worker.api.proxies`).
- ``keystone``: the caller's ``X-Auth-Token`` is validated by Keystone
  (:mod:`worker.api.keystone`); a missing or invalid token is refused with 401 and
  ``WWW-Authenticate: Keystone uri="..."``, as keystonemiddleware refuses it.

The identity is the caller type every layer shares (:class:`flows.requester.RequestContext`):
the catalogue decides visibility with it, task rows record it, task messages carry it.
"""

from __future__ import annotations

from aiohttp import web

from flows.requester import RequestContext
from worker.api.errors import ApiError, forbidden
from worker.api.keystone import InvalidToken, KeystoneClient

ADMIN = "admin"
MEMBER = "member"
READER = "reader"

#: keystonemiddleware's 401 message.
AUTHENTICATION_REQUIRED = "The request you have made requires authentication."
#: The 401 message of a request the proxy confirmed no identity for (webob's).
UNVERIFIED = "This server could not verify that you are authorized to access it."


def identity(
    project_id: str | None,
    user_id: str | None,
    roles: tuple[str, ...],
    request_id: str,
    token: str | None = None,
) -> RequestContext:
    """The caller as the API established them; Glance's admin is whoever has the admin role.

    ``token`` is passed on to services that need it (Barbican), never logged.
    """
    return RequestContext(
        project_id=project_id,
        user_id=user_id,
        request_id=request_id,
        is_admin=ADMIN in roles,
        roles=roles,
        token=token,
    )


IDENTITY_KEY: web.RequestKey[RequestContext] = web.RequestKey("identity", RequestContext)


def identity_of(request: web.Request) -> RequestContext:
    """The identity the auth middleware attached to ``request``."""
    try:
        return request[IDENTITY_KEY]
    except KeyError:
        raise RuntimeError("no identity on the request: the auth middleware did not run") from None


def parse_roles(value: str) -> tuple[str, ...]:
    """``X-Roles``: comma-separated role names, lower-cased."""
    return tuple(role.strip().lower() for role in value.split(",") if role.strip())


def from_headers(request: web.Request, request_id: str) -> RequestContext:
    """The identity an authenticating proxy set, or 401."""
    headers = request.headers
    if headers.get("X-Identity-Status", "").lower() != "confirmed":
        raise ApiError(401, UNVERIFIED)
    project = headers.get("X-Project-Id") or headers.get("X-Tenant-Id")
    if not project:
        raise ApiError(401, "The authenticating proxy sent no X-Project-Id.")
    return identity(
        project_id=project,
        user_id=headers.get("X-User-Id"),
        roles=parse_roles(headers.get("X-Roles", "")),
        request_id=request_id,
        token=headers.get("X-Auth-Token"),
    )


def unauthenticated(project: str, request_id: str) -> RequestContext:
    """``auth = "none"``: an admin of the one project."""
    return identity(
        project_id=project, user_id=None, roles=(ADMIN, MEMBER, READER), request_id=request_id
    )


async def from_keystone(
    request: web.Request, request_id: str, keystone: KeystoneClient
) -> RequestContext:
    """The identity of the request's ``X-Auth-Token`` as Keystone validates it, or 401.

    Keystone being unreachable raises :class:`worker.api.keystone.KeystoneUnavailable` (503).
    """
    token = request.headers.get("X-Auth-Token", "")
    challenge = {"WWW-Authenticate": keystone.challenge}
    if not token:
        raise ApiError(401, AUTHENTICATION_REQUIRED, headers=challenge)
    try:
        info = await keystone.validate(token)
    except InvalidToken:
        raise ApiError(401, AUTHENTICATION_REQUIRED, headers=challenge) from None
    if info.project_id is None:
        raise forbidden(
            "Your token is not scoped to a project; the Image API needs a project-scoped token "
            "(set OS_PROJECT_NAME, or --os-project-name)."
        )
    return identity(
        project_id=info.project_id,
        user_id=info.user_id,
        roles=info.roles,
        request_id=request_id,
        token=token,
    )
