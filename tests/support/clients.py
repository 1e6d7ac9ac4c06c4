"""The real ``glance`` and ``openstack`` command-line clients (deploy/dev/clients.sh).

They run as a user runs them: their own ``HOME`` (glanceclient caches schemas there), and
file descriptor 0 *closed*, as under cron — glanceclient takes an open, non-terminal stdin
as image data (see shared/reference/glance-client-facts.md).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / ".venv-clients" / "bin"


def client(name: str) -> str:
    """The path of a client program; fail (never skip) with how to install it."""
    path = CLIENTS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run deploy/dev/clients.sh", pytrace=False)
    return str(path)


@dataclass(frozen=True)
class Result:
    """What a client run printed and how it exited."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def ok(self) -> Result:
        """This result, or an assertion error showing everything the client said."""
        assert self.returncode == 0, f"{' '.join(self.argv)} exited {self.returncode}:\n{self}"
        return self

    def __str__(self) -> str:
        return f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class Clients:
    """Both clients, pointed at one image API and one identity."""

    home: Path
    #: Arguments that say where the API is and who calls (before the command).
    glance_args: list[str]
    openstack_args: list[str]
    environment: dict[str, str] = field(default_factory=dict)

    def glance(self, *args: str, timeout: float = 300) -> Result:
        """Run ``glance ARGS``."""
        return self._run([client("glance"), *self.glance_args, *args], timeout)

    def openstack(self, *args: str, timeout: float = 300) -> Result:
        """Run ``openstack ARGS``."""
        return self._run([client("openstack"), *self.openstack_args, *args], timeout)

    def _run(self, argv: list[str], timeout: float) -> Result:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OS_", "IMGWORKER"))
        }
        env.update(self.environment, HOME=str(self.home))
        done = subprocess.run(
            argv,
            env=env,
            stdin=None,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_close_stdin,
        )
        return Result(tuple(argv), done.returncode, done.stdout, done.stderr)


def refused(result: Result, status: int, *words: str) -> None:
    """Fail unless the client failed, said ``status`` and every one of ``words``."""
    said = result.stdout + result.stderr
    assert result.returncode != 0, f"{' '.join(result.argv)} was not refused:\n{result}"
    assert str(status) in said, said
    for word in words:
        assert word in said, said


def web_download(clients: Clients, name: str, uri: str, *options: str) -> str:
    """The guide's ``glance image-create-via-import ... --import-method web-download``
    (with ``--disk-format qcow2``, which the client requires); return the new image's id."""
    created = clients.glance(
        "image-create-via-import",
        "--container-format", "bare",
        "--disk-format", "qcow2",
        "--name", name,
        "--import-method", "web-download",
        "--uri", uri,
        *options,
    ).ok()  # fmt: skip
    return properties(created.stdout)["id"]


def _close_stdin() -> None:
    os.close(0)


def unauthenticated(url: str, home: Path) -> Clients:
    """Clients of an API with ``[api] auth = "none"``."""
    return Clients(
        home=home,
        glance_args=["--os-image-url", url, "--os-auth-token", "unused"],
        openstack_args=["--os-auth-type", "none", "--os-endpoint", url],
    )


def properties(output: str) -> dict[str, str]:
    """A ``Property | Value`` (or ``Field | Value``) table as a dict; wrapped cells joined."""
    values: dict[str, str] = {}
    last = None
    for cells in _rows(output)[1:]:
        name, value = cells[0], cells[1] if len(cells) > 1 else ""
        if name:
            values[name], last = value, name
        elif last is not None:
            values[last] += value
    return values


def table(output: str) -> list[dict[str, str]]:
    """A list table (``ID | Name | ...``) as one dict per row."""
    rows = _rows(output)
    if not rows:
        return []
    header, found = rows[0], []
    for cells in rows[1:]:
        found.append(dict(zip(header, cells, strict=False)))
    return found


def _rows(output: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in output.splitlines()
        if line.startswith("|")
    ]
