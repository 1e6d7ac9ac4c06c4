"""Who can reach ``imgworker api``, and whose word on identity it takes.

``auth = "none"`` makes every caller an admin, so it serves loopback only, unless ``[api]
allow_unauthenticated_network`` says that an unauthenticated listener on the network is
intended. ``auth = "headers"`` believes identity headers from ``[api] trusted_proxies`` alone
(checked per request by :mod:`worker.api.proxies`). ``imgworker api`` refuses to start on
:meth:`Exposure.refusal` and logs :meth:`Exposure.warnings` at every start; ``imgworker
config check`` prints all three.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.config.address import IpAddress, listen_addresses, parse_address
from worker.config.settings import ApiSettings

#: The key that opens an unauthenticated API to the network.
OPT_IN = "[api] allow_unauthenticated_network"


@dataclass(frozen=True)
class Exposure:
    """The ``[api]`` settings and the addresses ``listen`` binds."""

    api: ApiSettings
    addresses: tuple[IpAddress, ...]

    @property
    def loopback_only(self) -> bool:
        """Whether only this host can reach the listener."""
        return bool(self.addresses) and all(address.is_loopback for address in self.addresses)

    def refusal(self) -> str | None:
        """Why ``imgworker api`` must not start with these settings (one line), or None."""
        api = self.api
        if api.auth != "none" or self.loopback_only or api.allow_unauthenticated_network:
            return None
        return (
            f'[api] auth = "none" makes every caller an admin, and [api] listen = '
            f'"{api.listen}" is not loopback only ({self.reach()}): listen on 127.0.0.1 or '
            '[::1], set [api] auth to "keystone" or "headers", or set '
            f"{OPT_IN} = true if an unauthenticated API on the network is intended"
        )

    def warnings(self) -> list[str]:
        """What is open on purpose and must be said at every start."""
        api = self.api
        found = []
        if api.auth == "none" and not self.loopback_only:
            found.append(
                f"{OPT_IN} = true: anyone who reaches {api.listen} from another host is an "
                f"admin of project {api.default_project}, without any authentication"
            )
        if api.auth == "headers" and any(n.prefixlen == 0 for n in api.trusted_proxies):
            found.append(
                "[api] trusted_proxies holds a network of every address: any client that "
                f"reaches {api.listen} names its own identity; list the proxies' addresses"
            )
        return found

    def reach(self) -> str:
        """Who can reach the listener."""
        if not self.addresses:
            return "a name that does not resolve"
        if self.loopback_only:
            return "loopback only (this host)"
        if any(address.is_unspecified for address in self.addresses):
            return "every address of this host, reachable from other hosts"
        listed = ", ".join(str(address) for address in self.addresses)
        return f"reachable from other hosts at {listed}"

    def identity(self) -> str:
        """How a caller's identity is established, and from where it is believed."""
        api = self.api
        if api.auth == "none":
            who = "callers on this host" if self.loopback_only else "callers from anywhere"
            return f"none: {who} are admins of project {api.default_project}, unauthenticated"
        if api.auth == "headers":
            trusted = ", ".join(str(network) for network in api.trusted_proxies) or "nowhere"
            return (
                f"headers set by an authenticating proxy, believed from {trusted} "
                "([api] trusted_proxies); identity headers from elsewhere answer 401"
            )
        return "keystone: every request's X-Auth-Token validated by Keystone, from any address"


def exposure_of(api: ApiSettings) -> Exposure:
    """The exposure of ``api``; a listen name is resolved as the server will bind it."""
    host, _port = parse_address(api.listen)
    return Exposure(api, listen_addresses(host))
