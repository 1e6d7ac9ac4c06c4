"""Checking a web-download URI before any connection is made (and every redirect after).

Glance's ``import_filtering_opts`` (allowed/disallowed schemes, hosts and ports) plus what
Glance learned from its SSRF fixes: numeric host encodings are normalised before any check,
the host name is resolved and *every* address checked (loopback, private, link-local,
multicast, reserved and the metadata address are refused by default), and the addresses
that passed are returned so the connection can be pinned to them — a second, different DNS
answer cannot slip in between check and connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from yarl import URL

from flows.errors import SafetyRefusal, SourceUnavailable
from flows.policy import SafetyPolicy

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class VettedTarget:
    """A URI that passed every check, with the addresses the connection may use."""

    url: URL
    host: str
    port: int
    addresses: tuple[str, ...]


def display(url: URL | str) -> str:
    """The URI for messages and logs: no credentials, no query (it may hold a token)."""
    parsed = URL(str(url))
    if not parsed.is_absolute():
        return str(parsed.with_query(None))[:200]
    return str(parsed.with_user(None).with_password(None).with_query(None).with_fragment(None))


def normalise_host(host: str) -> IPAddress | None:
    """The IP address a host literal denotes in any encoding, or None for a host name.

    ``inet_aton`` accepts what C resolvers accept: ``2130706433``, ``0x7f000001``,
    ``0177.0.0.1`` and ``127.1`` all mean 127.0.0.1 — so they are checked as 127.0.0.1.
    """
    candidate = host.strip("[]")
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(candidate))
    except OSError:
        return None


def is_forbidden_address(address: IPAddress) -> str | None:
    """Why ``address`` may not be fetched from by default, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.packed[:12] == bytes(12) and int(address) > 1:
            embedded = ipaddress.IPv4Address(address.packed[12:])  # IPv4-compatible ::a.b.c.d
        if embedded is not None:
            reason = is_forbidden_address(embedded)
            return f"{reason} (embedded in {address})" if reason else None
    if address in METADATA_ADDRESSES:
        return "the cloud metadata address"
    for label, flag in (
        ("a loopback address", address.is_loopback),
        ("an unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
    ):
        if flag:
            return label
    if not address.is_global:
        return "a non-public address"
    return None


async def vet_uri(
    uri: str, policy: SafetyPolicy, *, redirect_from: str | None = None
) -> VettedTarget:
    """Check ``uri`` against ``policy``; raise :class:`SafetyRefusal` naming the rule it breaks.

    ``redirect_from`` marks a redirect target: its refusals use the ``redirect`` check and
    say where the redirect came from. The checks (the host's resolution among them) run off
    the event loop, in :func:`vet_uri_blocking`.
    """
    return await asyncio.to_thread(vet_uri_blocking, uri, policy, redirect_from=redirect_from)


def vet_uri_blocking(
    uri: str, policy: SafetyPolicy, *, redirect_from: str | None = None
) -> VettedTarget:
    """:func:`vet_uri` in the calling thread (a worker thread: it resolves the host here)."""
    with _as_redirect(redirect_from):
        found = _vet_before_resolving(uri, policy)
        addresses = [found.literal] if found.literal is not None else _resolve(found)
        return _vet_addresses(found, addresses, policy)


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A URI that passed the checks made before its host is resolved."""

    url: URL
    shown: str
    host: str
    port: int
    literal: IPAddress | None
    names: frozenset[str]


@contextlib.contextmanager
def _as_redirect(redirect_from: str | None) -> Iterator[None]:
    """Report a refusal of a redirect target as a ``redirect`` refusal saying where it came from."""
    try:
        yield
    except SafetyRefusal as refusal:
        if redirect_from is None:
            raise
        raise SafetyRefusal(
            "redirect", f"redirect from {display(redirect_from)} refused: {refusal.message}"
        ) from refusal


def _vet_before_resolving(uri: str, policy: SafetyPolicy) -> _Parsed:
    try:
        url = URL(uri)
    except (ValueError, TypeError) as exc:
        raise SafetyRefusal("uri_scheme", f"{uri[:200]!r} is not a valid URI: {exc}") from exc
    shown = display(url)
    scheme = (url.scheme or "").lower()
    if not scheme or (policy.allowed_schemes and scheme not in policy.allowed_schemes):
        raise SafetyRefusal(
            "uri_scheme",
            f"{shown}: scheme {scheme or '(none)'!r} is not allowed "
            f"({_setting('allowed_schemes', policy.allowed_schemes)})",
        )
    if scheme in policy.disallowed_schemes:
        raise SafetyRefusal(
            "uri_scheme",
            f"{shown}: scheme {scheme!r} is disallowed "
            f"({_setting('disallowed_schemes', policy.disallowed_schemes)})",
        )
    if url.user is not None or url.password is not None:
        raise SafetyRefusal(
            "uri_host",
            f"{shown}: credentials in the URI are refused (they would be logged); give a URI "
            "without user or password",
        )
    host = (url.raw_host or "").lower().rstrip(".")
    if not host:
        raise SafetyRefusal("uri_host", f"{shown}: the URI names no host")
    literal = normalise_host(host)
    names = {host} | ({str(literal)} if literal is not None else set())
    allowed_hosts = {h.lower() for h in policy.allowed_hosts}
    if allowed_hosts and not names & allowed_hosts:
        raise SafetyRefusal(
            "uri_host",
            f"{shown}: host {host!r} is not in the allowed hosts "
            f"({_setting('allowed_hosts', policy.allowed_hosts)}); add it there to allow it",
        )
    if names & {h.lower() for h in policy.disallowed_hosts}:
        raise SafetyRefusal(
            "uri_host",
            f"{shown}: host {host!r} is disallowed "
            f"({_setting('disallowed_hosts', policy.disallowed_hosts)})",
        )
    port = url.explicit_port or DEFAULT_PORTS.get(scheme)
    if port is None:
        raise SafetyRefusal("uri_port", f"{shown}: no port given and none known for {scheme!r}")
    if policy.allowed_ports and port not in policy.allowed_ports:
        raise SafetyRefusal(
            "uri_port",
            f"{shown}: port {port} is not allowed "
            f"({_setting('allowed_ports', policy.allowed_ports)}); add {port} there to allow it",
        )
    if port in policy.disallowed_ports:
        raise SafetyRefusal(
            "uri_port",
            f"{shown}: port {port} is disallowed "
            f"({_setting('disallowed_ports', policy.disallowed_ports)})",
        )
    return _Parsed(url, shown, host, port, literal, frozenset(names))


def _vet_addresses(
    found: _Parsed, addresses: list[IPAddress], policy: SafetyPolicy
) -> VettedTarget:
    trusted = bool(found.names & {h.lower() for h in policy.trusted_hosts})
    if not (policy.allow_private_addresses or trusted):
        for address in addresses:
            reason = is_forbidden_address(address)
            if reason:
                raise SafetyRefusal(
                    "uri_address",
                    f"{found.shown}: host {found.host!r} resolves to {address}, {reason}; "
                    "downloads from internal addresses are refused: list the host in "
                    "[safety] trusted_hosts to allow it (an internal mirror)",
                )
    return VettedTarget(
        url=found.url,
        host=found.host,
        port=found.port,
        addresses=tuple(str(a) for a in addresses),
    )


def _setting(key: str, values: tuple[str, ...] | tuple[int, ...]) -> str:
    """How a refusal names the setting that decided it: ``[safety] allowed_ports = [80, 443]``."""
    listed = ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values)
    return f"[safety] {key} = [{listed}]"


def _resolve(found: _Parsed) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(found.host, found.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SourceUnavailable(
            f"{found.shown}: cannot resolve host {found.host!r}: {exc.strerror}"
        ) from exc
    unique: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in unique:
            unique.append(address)
    if not unique:
        raise SourceUnavailable(f"{found.shown}: host {found.host!r} has no address")
    return unique
