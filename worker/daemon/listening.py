"""Listening on a configured ``host:port``, or one line that names the setting to change.

A port another process holds, an address this host does not have, a port below 1024 without
the privilege: none of these is cured by starting again, so the process ends with
:data:`~worker.config.source.CANNOT_LISTEN`, on which the systemd units do not restart.
Decided by the error number, never its text.
"""

from __future__ import annotations

import errno

from aiohttp import web

from worker.config.address import parse_address


class CannotListen(Exception):
    """A configured address cannot be listened on; the message says which and what to do."""


async def listen(runner: web.AppRunner, address: str, setting: str) -> None:
    """Serve ``runner`` on ``address`` (the value of ``setting``, e.g. ``[worker] http``).

    Raises :class:`CannotListen` when the address cannot be bound.
    """
    host, port = parse_address(address)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise CannotListen(_why(exc, address, setting)) from exc


def _why(error: OSError, address: str, setting: str) -> str:
    head = f"{setting} = {address!r} cannot be listened on"
    if error.errno == errno.EADDRINUSE:
        return (
            f"{head}: the port is in use by another process (another worker or API on this "
            f"host?); give this one a free port in {setting}"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"{head}: the host is not an address of this machine; set {setting} to one of "
            "its addresses, 127.0.0.1 or 0.0.0.0"
        )
    if error.errno == errno.EACCES:
        return f"{head}: permission denied (a port below 1024?); use a port above 1023"
    return f"{head}: {error.strerror or error}"
