"""Parsing ``host:port`` settings (shared by the settings check and the HTTP server)."""

from __future__ import annotations


def parse_address(value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:9480`` for IPv6) into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(
            f"[worker] http = {value!r} is not host:port; write it like 127.0.0.1:9480"
        )
    return host.strip("[]") or "0.0.0.0", int(port)
