"""A PostgreSQL cluster of the test's own, to restart and cut without touching the shared one.

``initdb`` in a fresh directory, a free port on loopback, ``pg_ctl`` to start, restart, stop.
As root the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
Everything goes when the context ends: the server is stopped and its directory removed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.workers import free_port

#: Faster, and enough for a throwaway cluster: nothing here must survive a power cut.
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c max_connections=60"
)


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.fail("PostgreSQL's server is not installed: apt-get install postgresql")
    return Path(initdb).parent


@dataclass
class PrivatePostgres:
    """One running cluster: its data directory, port and programs."""

    directory: Path
    port: int
    bindir: Path

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``postgres`` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        """The asyncpg DSN of its ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def _ctl(self, action: str, *options: str) -> None:
        self._run(
            "pg_ctl",
            action,
            "-w",
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            f"-p {self.port} -k {self.directory} {_SERVER_OPTIONS}",
            *options,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._ctl("start")

    def stop(self) -> None:
        """Stop the server (``fast``: sessions are terminated, as an operator's restart does)."""
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session terminated, the server back at once."""
        self._ctl("restart", "-m", "fast")

    def outage(self, seconds: float) -> None:
        """Stop the server, keep it down ``seconds``, start it again."""
        self.stop()
        time.sleep(seconds)
        self.start()

    def log(self) -> str:
        """What the server logged."""
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A new cluster on a free port for the duration (stopped and removed after)."""
    bindir = _bindir()
    directory = Path(tempfile.mkdtemp(prefix="imgworker-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    cluster = PrivatePostgres(directory, free_port(), bindir)
    try:
        cluster._run("initdb", "-D", str(directory / "data"), "-U", "postgres", "-A", "trust", "-N")
        cluster.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.fail(f"a private PostgreSQL did not start: {exc.stderr!r}\n{cluster.log()}")
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            cluster._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(directory / "data"))
        shutil.rmtree(directory, ignore_errors=True)
