"""A RabbitMQ node of the test's own, for tests that stop and restart their broker.

The machine's RabbitMQ (127.0.0.1:5672) is shared by every test running at once; a test that
restarts a broker restarts this one instead: its own node name, AMQP and distribution ports,
and data directory, started with Debian's ``rabbitmq-server`` (which runs the node as the
``rabbitmq`` user, hence a directory that user owns) and stopped by its node name.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.support.services import require_program


@dataclass(frozen=True)
class PrivateBroker:
    """A running node: its AMQP URL and what ``rabbitmqctl`` needs to reach it."""

    url: str
    port: int
    node: str
    env: dict[str, str]

    def ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n NODE ARGS``; raise with its output when it fails."""
        done = subprocess.run(
            ["rabbitmqctl", "-q", "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def restart(self) -> None:
        """Stop the RabbitMQ application and start it again (the node's VM stays up).

        Its listener's port can still be held for a moment after ``stop_app``; starting is
        tried again until it binds.
        """
        self.ctl("stop_app")
        deadline = time.monotonic() + 60
        while True:
            try:
                self.ctl("start_app")
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def private_rabbitmq() -> Iterator[PrivateBroker]:
    """Start a RabbitMQ node of its own on free ports; stop it and remove its data after."""
    require_program("rabbitmq-server", "rabbitmq-server")
    root = Path(tempfile.mkdtemp(prefix="imgworker-rabbitmq-"))
    root.chmod(0o755)
    port, dist_port = _free_port(), _free_port()
    node = f"imgw{uuid.uuid4().hex[:10]}@localhost"
    (root / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\n")
    (root / "enabled_plugins").write_text("[].\n")
    shutil.chown(root, "rabbitmq", "rabbitmq")
    for child in root.iterdir():
        shutil.chown(child, "rabbitmq", "rabbitmq")
    env = {
        **os.environ,
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
        "RABBITMQ_LOG_BASE": str(root / "log"),
        "RABBITMQ_PID_FILE": str(root / "pid"),
        "RABBITMQ_DIST_PORT": str(dist_port),
    }
    broker = PrivateBroker(f"amqp://guest:guest@127.0.0.1:{port}/", port, node, env)
    try:
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=env, check=True, capture_output=True, timeout=60
        )
        broker.ctl("wait", str(root / "pid"), "--timeout", "90")
        yield broker
    finally:
        _stop(broker, root / "pid")
        shutil.rmtree(root, ignore_errors=True)


def _stop(broker: PrivateBroker, pid_file: Path) -> None:
    """Stop the node by its name; if it does not answer, end its VM by the pid it wrote."""
    try:
        broker.ctl("stop", timeout=60)
        return
    except (AssertionError, subprocess.TimeoutExpired):
        pass
    with suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text().strip()), 9)
