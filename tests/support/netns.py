"""A network namespace of the test's own, joined to this host by a veth pair.

Code run with :meth:`Namespace.run` reaches this host at ``host_address`` from
``peer_address``: a real non-loopback client, without any other machine. Needs root and
``ip`` (iproute2); everything is removed on exit, whatever happened.
"""

from __future__ import annotations

import ipaddress
import random
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support.services import require_program

#: Where the test /30s come from (other suites on this machine use 10.250.0.0/16).
POOL = ipaddress.ip_network("10.251.0.0/16")


@dataclass(frozen=True)
class Namespace:
    """A namespace ``name`` whose interface has ``peer_address``; this host has ``host_address``."""

    name: str
    host_address: str
    peer_address: str

    def run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``command`` inside the namespace; return its result (never raises on exit code)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def _free_subnet() -> ipaddress.IPv4Network:
    used = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    subnets = list(POOL.subnets(new_prefix=30))
    for _ in range(100):
        subnet = random.choice(subnets)
        if not any(f" {host}/" in used for host in subnet):
            return subnet
    raise RuntimeError(f"no free /30 left in {POOL}")


@contextmanager
def namespace() -> Iterator[Namespace]:
    """A fresh namespace and veth pair with addresses from a free private /30."""
    require_program("ip", "iproute2")
    tag = uuid.uuid4().hex[:8]
    name, host_if, peer_if = f"iwd-{tag}", f"iwd{tag}h", f"iwd{tag}n"
    subnet = _free_subnet()
    host, peer = (str(address) for address in list(subnet.hosts())[:2])
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        _ip("link", "set", peer_if, "netns", name)
        _ip("addr", "add", f"{host}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{peer}/30", "dev", peer_if)
        _ip("-n", name, "link", "set", peer_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield Namespace(name, host, peer)
    finally:
        # Deleting one end of a veth pair deletes both; the namespace goes last.
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
