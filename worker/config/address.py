"""Addresses in the settings: ``host:port`` listeners, the networks a peer may come from.

Shared by the settings check, the HTTP servers and ``imgworker config check``.
"""

from __future__ import annotations

import ipaddress
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network

#: This host, and nothing else.
LOOPBACK: tuple[IpNetwork, ...] = (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128"))
#: Where IPv6 maps the IPv4 addresses (``::ffff:192.0.2.7``).
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")


def parse_address(value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:9480`` for IPv6) into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(
            f"[worker] http = {value!r} is not host:port; write it like 127.0.0.1:9480"
        )
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_network(value: str) -> IpNetwork:
    """``10.0.0.0/8``, ``fd00::/64`` or one address (``192.0.2.7``, a network of one)."""
    text = value.strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or network; write it like 192.0.2.7, "
            "10.0.0.0/8 or fd00::/64"
        ) from None
    if ipaddress.ip_address(text.partition("/")[0]) != network.network_address:
        raise ValueError(
            f"{value!r} has host bits set; write the network, {network}, or the one address"
        )
    if isinstance(network, IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        # Peers are compared as the IPv4 addresses they map (see peer_ip).
        mapped = IPv4Address(int(network.network_address) & 0xFFFFFFFF)
        return IPv4Network((mapped, network.prefixlen - 96))
    return network


def peer_ip(remote: str | None) -> IpAddress | None:
    """The address of a TCP peer as a socket reports it, or None when it is not one.

    An IPv6 zone (``fe80::1%eth0``) is dropped, and an IPv4-mapped IPv6 address
    (``::ffff:192.0.2.7``, what a dual-stack socket reports) is the IPv4 address it maps.
    """
    try:
        address = ipaddress.ip_address((remote or "").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(remote: str | None, networks: tuple[IpNetwork, ...]) -> bool:
    """Whether the peer ``remote`` is in one of ``networks`` (never, when it is no address)."""
    address = peer_ip(remote)
    return address is not None and any(address in network for network in networks)


def listen_addresses(host: str) -> tuple[IpAddress, ...]:
    """The addresses a server bound to ``host`` listens on; none when the name does not resolve.

    A name is resolved as the server resolves it when binding (blocking).
    """
    literal = peer_ip(host)
    if literal is not None:
        return (literal,)
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        return ()
    resolved = (peer_ip(str(info[4][0])) for info in found)
    return tuple(dict.fromkeys(address for address in resolved if address is not None))


def local_url(value: str) -> str:
    """``http://host:port`` that reaches a server listening on ``value`` from its own host:
    a wildcard address (``0.0.0.0``, ``::``) becomes the loopback address of its family."""
    host, port = parse_address(value)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
