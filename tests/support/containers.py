"""podman for the container smoke test: the image deploy/container/build.sh makes, and
containers of the test's own (unique names, removed by name afterwards).

Containers run as Kubernetes runs the Deployment of deploy/kubernetes/: the image's own user,
a read-only root filesystem (no tmpfs either), every capability dropped, no privilege
escalation, only the volumes given. They share the host's network, so they reach the host's
PostgreSQL, RabbitMQ, Ceph and web servers on loopback, and listen on free ports of the host.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import require_program

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deploy" / "container" / "build.sh"
CONTAINERS_CONF = ROOT / "deploy" / "container" / "containers.conf"

#: What podman itself creates in a container's root: mount points of the files it provides.
PODMAN_OWN = {
    "/etc",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/run",
    "/run/.containerenv",
}


def podman(*args: str, timeout: float = 120, with_stderr: bool = False) -> str:
    """Run podman with deploy/container's settings; its output (``with_stderr``: and what it
    wrote to stderr, as ``podman logs`` replays a container's stderr), or fail saying why."""
    result = subprocess.run(
        ["podman", *args],
        env=dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF)),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        )
    return result.stdout + result.stderr if with_stderr else result.stdout


def built_image(scratch: Path) -> str:
    """The image's id: ``$IMGWORKER_IMAGE`` when the caller built it (test.sh does, in the
    background), else deploy/container/build.sh builds it now (quick when its layers are cached).
    """
    image = os.environ.get("IMGWORKER_IMAGE")
    if not image:
        iidfile = scratch / "iid"
        result = subprocess.run(
            [str(BUILD), "--iidfile", str(iidfile)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"{BUILD} failed:\n{result.stdout}{result.stderr}", pytrace=False)
        print(result.stdout, end="")
        image = iidfile.read_text().strip().removeprefix("sha256:")
    require_program("podman", "podman")
    return image


@dataclass
class Container:
    """One container of the test, by its unique name."""

    name: str
    #: Where the test mounted volumes in it (their mount points are not writes of the image).
    mount_points: tuple[str, ...]

    def inspect(self, template: str) -> str:
        """``podman inspect --format TEMPLATE``."""
        return podman("inspect", "--format", template, self.name).strip()

    def logs(self) -> str:
        """Everything it wrote to stdout and stderr."""
        return podman("logs", self.name, with_stderr=True)

    def running(self) -> bool:
        """True while its process runs."""
        return self.inspect("{{.State.Running}}") == "true"

    def health(self) -> str:
        """Run its health check once (``podman healthcheck run``): ``healthy`` or why not."""
        try:
            return podman("healthcheck", "run", self.name, timeout=30).strip() or "healthy"
        except AssertionError as exc:
            return f"unhealthy: {exc}; last check: {self.inspect('{{json .State.Health}}')}"

    def process_status(self) -> dict[str, str]:
        """Its main process's /proc status (Uid, CapEff, NoNewPrivs, Seccomp, ...)."""
        pid = self.inspect("{{.State.Pid}}")
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}

    def exec(self, *command: str) -> str:
        """Run ``command`` in it (as Kubernetes runs a preStop hook); what it printed."""
        return podman("exec", self.name, *command, with_stderr=True)

    def writes_outside_volumes(self) -> list[str]:
        """What ``podman diff`` finds changed in its root, beyond the mount points podman and
        the test made."""
        allowed = set(PODMAN_OWN)
        for point in self.mount_points:
            path = Path(point)
            allowed.update(str(p) for p in (path, *path.parents))
        changes = podman("diff", self.name).split()
        return [
            f"{kind} {path}"
            for kind, path in zip(changes[::2], changes[1::2], strict=True)
            if path not in allowed
        ]

    def stop(self, grace_seconds: int) -> tuple[float, int]:
        """SIGTERM (the image's STOPSIGNAL), SIGKILL after ``grace_seconds`` as Kubernetes'
        terminationGracePeriodSeconds would; the seconds it took and the exit code."""
        started = time.monotonic()
        podman("stop", "--time", str(grace_seconds), self.name, timeout=grace_seconds + 60)
        return time.monotonic() - started, int(self.inspect("{{.State.ExitCode}}"))


@contextmanager
def running_container(
    image: str,
    role: str,
    *,
    env: dict[str, str],
    volumes: dict[Path, str],
    read_only: tuple[Path, ...] = (),
    health_cmd: str | None = None,
) -> Iterator[Container]:
    """``imgworker ROLE`` in a container of its own (``volumes``: host path → mount point;
    those in ``read_only`` mounted read-only); removed, whatever happened, at the end."""
    name = f"imgworker-it-{role}-{uuid.uuid4().hex[:10]}"
    options = [
        "--detach",
        f"--name={name}",
        "--network=host",
        "--read-only",
        "--read-only-tmpfs=false",
        "--cap-drop=all",
        "--security-opt=no-new-privileges",
    ]
    for host, point in volumes.items():
        options.append(f"--volume={host}:{point}:{'ro' if host in read_only else 'rw'}")
    options += [f"--env={key}={value}" for key, value in env.items()]
    if health_cmd is not None:
        options.append(f"--health-cmd={health_cmd}")
    try:
        podman("run", *options, image, role)
        yield Container(name, tuple(volumes.values()))
    finally:
        subprocess.run(
            ["podman", "rm", "--force", "--time=0", "--volumes", name],
            env=dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF)),
            capture_output=True,
            check=False,
        )
