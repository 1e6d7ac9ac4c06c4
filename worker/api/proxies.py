"""``auth = "headers"``: identity headers are believed from the authenticating proxy alone.

A request's identity headers are read only when its TCP peer is one of ``[api]
trusted_proxies`` (loopback by default). The peer is the socket's, never ``X-Forwarded-For``
or ``Forwarded``, which any client can write: behind a proxy the peer *is* the proxy, which
vouches for its caller with the headers it sets after removing the ones the client sent. A
request from any other peer that carries identity headers is refused with 401 and logged
with its source; one without them is anonymous, and anonymous is 401 too.
"""

from __future__ import annotations

import logging

from aiohttp import web
from multidict import CIMultiDictProxy

from worker.api.errors import ApiError
from worker.api.identity import AUTHENTICATION_REQUIRED, UNVERIFIED
from worker.config.address import IpNetwork, within

log = logging.getLogger(__name__)

_FACETS = (
    "Domain-Id",
    "Domain-Name",
    "Project-Id",
    "Project-Name",
    "Project-Domain-Id",
    "Project-Domain-Name",
    "User-Id",
    "User-Name",
    "User-Domain-Id",
    "User-Domain-Name",
    "Roles",
)

#: What keystonemiddleware sets from a validated token, for the user and for the service
#: token (``X-Service-*``), and removes from every client request first; lower-cased. A
#: client sending one claims an identity. ``X-Auth-Token`` and ``X-Service-Token`` are not
#: claims but credentials, which a client sends as a matter of course.
IDENTITY_HEADERS = frozenset(
    name.lower()
    for name in (
        "X-Identity-Status",
        "X-Service-Identity-Status",
        "X-Is-Admin-Project",
        "X-Service-Catalog",
        "X-Role",
        "X-User",
        "X-Tenant",
        "X-Tenant-Id",
        "X-Tenant-Name",
        *(f"X-{facet}" for facet in _FACETS),
        *(f"X-Service-{facet}" for facet in _FACETS),
    )
)


def peer_of(request: web.Request) -> str | None:
    """The address of the request's TCP peer, as the socket reports it."""
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return None


def claimed_identity(headers: CIMultiDictProxy[str]) -> list[str]:
    """The identity headers among ``headers``, by name."""
    return sorted({name for name in headers if name.lower() in IDENTITY_HEADERS})


def require_trusted_peer(request: web.Request, trusted: tuple[IpNetwork, ...]) -> None:
    """Return when the request comes from a trusted proxy; otherwise 401."""
    peer = peer_of(request)
    if within(peer, trusted):
        return
    claimed = claimed_identity(request.headers)
    if not claimed:
        raise ApiError(401, UNVERIFIED)
    log.warning(
        "identity headers refused: %s %s from %s, which is not in [api] trusted_proxies, "
        "carried %s",
        request.method,
        request.path,
        peer,
        ", ".join(claimed),
    )
    raise ApiError(401, AUTHENTICATION_REQUIRED)
