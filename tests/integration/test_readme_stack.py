"""The README's Image API section, run exactly as printed, from a fresh database.

The commands are read from the README's code block (they cannot drift from what the test
runs) and run by bash as a reader would paste them, with only the environment a second
stack on a shared machine needs: a directory of its own (so a database and queues of its
own), free ports, a ``HOME`` for the clients' caches, and standard input closed (glance takes
an open one as image data).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import require_tcp

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "dev" / "stack.sh"


def readme_commands() -> str:
    """The first ``sh`` block of the README's section on the Image API."""
    section = ROOT.joinpath("README.md").read_text().split("\n## The Image API", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert found is not None, "the README's Image API section has no sh block"
    return found.group(1)


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a reader's shell, with a stack directory of its own; the stack is
    stopped and its database dropped afterwards, whatever the test did."""
    require_tcp("PostgreSQL", "127.0.0.1", 5432)
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "IMGWORKER"))}
    env.update(
        HOME=str(tmp_path / "home"),
        IMGWORKER_DEV_DIR=str(tmp_path / "dev"),
        IMGWORKER_DEV_FREE_PORTS="1",
    )
    try:
        yield env
    finally:
        subprocess.run([str(STACK), "down", "--purge"], env=env, timeout=120, check=False)


def _close_stdin() -> None:
    os.close(0)


def test_every_command_of_the_readme_runs_as_printed(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    commands = readme_commands()
    assert commands.startswith('eval "$(deploy/dev/stack.sh up)"')
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + commands],
        cwd=ROOT,
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_close_stdin,
        check=False,
    )
    assert done.returncode == 0, f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    out = done.stdout
    # The web-download into central,dcn0 (its task waited for), then copy-image to the rest.
    assert re.search(r"\| stores\s+\| central,dcn0\s+\|", out), out
    tasks = [line.split() for line in out.splitlines() if "api_image_import" in line]
    assert [task[2] for task in tasks] == ["success", "success", "success"], out
    assert "imported to central, dcn0" in out and "imported to dcn1" in out
    assert re.search(r"\|\s*\S+\s*\|\s*cirros\s*\|\s*central,dcn0,dcn1\s*\|", out), out
    # stores-delete removed dcn0's copy.
    assert "stores='central,dcn1'" in out
    # down stopped every process up started.
    assert "stopped sample, api, worker" in done.stderr


def test_in_the_foreground_ctrl_c_stops_what_it_started(stack_env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [str(STACK)],
        cwd=ROOT,
        env=stack_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    exports = [process.stdout.readline() for _ in range(5)]
    assert exports[0].startswith("export IMGWORKER_CONFIG=") and "OS_CLOUD=" in exports[2]
    state = Path(stack_env["IMGWORKER_DEV_DIR"]) / "running.json"
    started = json.loads(state.read_text())["processes"]
    pids = [pid for pid, _command in started.values()]
    assert len(pids) == 3 and all(Path(f"/proc/{pid}").exists() for pid in pids)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "stopped sample, api, worker" in err
    assert not state.exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
