"""Reaching the real services; a missing one fails the test with how to start it."""

from __future__ import annotations

import shutil
import socket

import pytest

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "RabbitMQ": "rabbitmq-server -detached",
}


def require_tcp(name: str, host: str, port: int) -> None:
    """Fail (never skip) when ``name`` does not listen on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        pytest.fail(
            f"{name} is not reachable on {host}:{port} ({exc}); start it with: "
            f"{HOW_TO_START.get(name, 'see README')}",
            pytrace=False,
        )


def require_program(name: str, package: str) -> str:
    """Fail when ``name`` is not installed, naming the Debian package."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {package}", pytrace=False)
    return path
