"""``imgworker api`` for tests: in process (aiohttp's test client) or as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from aiohttp.test_utils import TestClient, TestServer

from tests.support.workers import IMGWORKER, free_port
from worker.api.app import build_app, close_state, open_state
from worker.api.state import ApiState
from worker.config.settings import Settings


def identity_headers(
    project: str, roles: str = "member,reader", user: str = "u1"
) -> dict[str, str]:
    """What an authenticating proxy sets for a caller of ``project``."""
    return {
        "X-Identity-Status": "Confirmed",
        "X-Project-Id": project,
        "X-User-Id": user,
        "X-Roles": roles,
    }


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[tuple[TestClient[Any, Any], ApiState]]:
    """The API application in this process, and a client talking to it over loopback."""
    state = await open_state(settings)
    client: TestClient[Any, Any] = TestClient(TestServer(build_app(state)))
    await client.start_server()
    try:
        yield client, state
    finally:
        await client.close()
        await close_state(state)


@dataclass
class ApiProcess:
    """One running ``imgworker api``."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> bool:
        """True once it answers version discovery."""
        try:
            with urlopen(f"{self.url}/versions", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def output(self) -> str:
        """Everything it logged."""
        return self.log.read_text(errors="replace")

    def image(self, image_id: str) -> dict[str, Any]:
        """The image as this API returns it (JSON), with ``auth = "none"``."""
        with urlopen(f"{self.url}/v2/images/{image_id}", timeout=10) as reply:
            return dict(json.load(reply))

    def settled(self, image_id: str, timeout: float = 180) -> dict[str, Any]:
        """The image once it is active or failed and no import holds it."""
        deadline = time.monotonic() + timeout
        while True:
            image = self.image(image_id)
            if image["status"] in ("active", "failed") and "os_glance_import_task" not in image:
                return image
            assert time.monotonic() < deadline, f"image did not settle: {image}"
            time.sleep(0.2)


def start_api(
    config: Path, root: Path, name: str = "api", host: str = "127.0.0.1", **environment: str
) -> ApiProcess:
    """Start ``imgworker api`` on ``host`` and a free port and wait until it answers."""
    port = free_port()
    log = root / f"{name}.log"
    env = dict(os.environ, IMGWORKER_CONFIG=str(config), IMGWORKER_API__LISTEN=f'"{host}:{port}"')
    env.update(environment)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [IMGWORKER, "api"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    api = ApiProcess(port, process, log)
    deadline = time.monotonic() + 60
    while not api.up():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"imgworker api did not start:\n{api.output()}")
        time.sleep(0.2)
    return api


@contextmanager
def running_api(
    config: Path, root: Path, name: str = "api", host: str = "127.0.0.1", **environment: str
) -> Iterator[ApiProcess]:
    """An API process for the duration; SIGTERM at the end (SIGKILL after 20 s)."""
    api = start_api(config, root, name, host, **environment)
    try:
        yield api
    finally:
        if api.process.poll() is None:
            api.process.send_signal(signal.SIGTERM)
            try:
                api.process.wait(20)
            except subprocess.TimeoutExpired:
                api.process.kill()
                api.process.wait()
