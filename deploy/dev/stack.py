"""A running imgworker on this machine's PostgreSQL and RabbitMQ: ``deploy/dev/stack.sh``.

``up`` creates the stack's own database, writes a configuration with the guide's three stores
(central, dcn0, dcn1: file stores under the stack's directory), starts ``imgworker api``, a
worker and a web server holding a sample image, waits until they answer, and prints the
``export`` lines for ``glance``, ``openstack`` and ``imgworker`` on standard output (all else
goes to standard error, so ``eval "$(deploy/dev/stack.sh up)"`` works). ``down`` stops what
``up`` started (by the process ids it recorded); ``down --purge`` also drops the database, the
broker's queues and the directory. With no command it runs in the foreground: ``up``, then
``down`` on Ctrl-C.

Everything is named after the stack's directory (``.dev`` in the checkout, or
``$IMGWORKER_DEV_DIR``), so two stacks — or a stack and the test suite — never share a
database, a queue or a file. Ports are Glance's usual ones (9292 for the API) unless
``--free-ports`` (or ``IMGWORKER_DEV_FREE_PORTS=1``) asks for free ones.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
CLIENTS_BIN = ROOT / ".venv-clients" / "bin"
#: Where PostgreSQL lets this machine's user create databases, and the broker everyone uses.
POSTGRES_ADMIN = os.environ.get(
    "IMGWORKER_DEV_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BROKER = os.environ.get("IMGWORKER_DEV_BROKER", "amqp://guest:guest@127.0.0.1:5672/")
#: The ports used unless free ones are asked for: Glance's API port, the worker's, the sample's.
DEFAULT_PORTS = {"api": 9292, "worker": 9480, "sample": 9488}
SAMPLE = "cirros.qcow2"
CLOUD = "imgworker-dev"
READY_SECONDS = 90.0
STOP_SECONDS = 30.0
#: Set by Ctrl-C (SIGINT) or SIGTERM in the foreground: stop, whatever the stack is doing.
STOP = threading.Event()


def say(text: str) -> None:
    """Tell the person running it (standard error: standard output is for ``eval``)."""
    print(f"stack: {text}", file=sys.stderr, flush=True)


class StackError(Exception):
    """What stopped the stack, in one line."""


@dataclass(frozen=True)
class Stack:
    """Where a stack lives and what it is called."""

    directory: Path

    @property
    def tag(self) -> str:
        """A short name unique to the directory (the database's and the queues' suffix)."""
        return hashlib.sha256(str(self.directory).encode()).hexdigest()[:10]

    @property
    def database(self) -> str:
        """The stack's own database."""
        return f"imgworker_dev_{self.tag}"

    @property
    def broker_prefix(self) -> str:
        """The prefix of the stack's exchange and queues."""
        return f"imgworker-dev-{self.tag}"

    @property
    def config(self) -> Path:
        """The imgworker configuration it writes."""
        return self.directory / "imgworker.toml"

    @property
    def state(self) -> Path:
        """What ``up`` started (ports and process ids), for ``down``."""
        return self.directory / "running.json"


@dataclass
class Running:
    """The ports a stack serves on and the processes it started."""

    ports: dict[str, int]
    #: Name to (pid, the command line it was started with).
    processes: dict[str, tuple[int, list[str]]]


def main() -> int:
    """Run ``deploy/dev/stack.sh``'s command."""
    parser = argparse.ArgumentParser(prog="deploy/dev/stack.sh", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["up", "down", "run"])
    parser.add_argument("--free-ports", action="store_true", help="Use free ports.")
    parser.add_argument("--purge", action="store_true", help="down: drop its database too.")
    args = parser.parse_args()
    directory = Path(os.environ.get("IMGWORKER_DEV_DIR") or ROOT / ".dev").absolute()
    stack = Stack(directory)
    free = args.free_ports or os.environ.get("IMGWORKER_DEV_FREE_PORTS") == "1"
    try:
        if args.command == "down":
            down(stack, purge=args.purge)
            return 0
        if args.command == "run":
            # From the start: a Ctrl-C while it starts stops what had started.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda _signum, _frame: STOP.set())
        running = up(stack, free)
        print(exports(stack, running), flush=True)
        if args.command == "run":
            say("running; Ctrl-C stops it")
            STOP.wait()
            down(stack, purge=False)
    except StackError as error:
        say(f"error: {error}")
        return 1
    return 0


def up(stack: Stack, free_ports: bool) -> Running:
    """Start the stack (or find it running); return what runs."""
    running = _read_running(stack)
    if running is not None and all(_alive(p, cmd) for p, cmd in running.processes.values()):
        say(f"already up in {stack.directory}")
        return running
    if running is not None:
        _stop(running)
    stack.directory.mkdir(parents=True, exist_ok=True)
    ports = _ports(free_ports)
    asyncio.run(_create_database(stack.database))
    _write_config(stack, ports)
    _write_clouds(stack, ports)
    _make_sample(stack.directory / "www" / SAMPLE)
    running = Running(ports, {})
    imgworker = str(VENV_BIN / "imgworker")
    commands = {
        "sample": _sample_server(stack, ports["sample"]),
        "api": [imgworker, "api", "--text-logs"],
        "worker": [imgworker, "run", "--text-logs"],
    }
    try:
        children = {name: _start(stack, running, name, cmd) for name, cmd in commands.items()}
        stack.state.write_text(json.dumps(asdict(running)))
        _wait_until_ready(stack, running, children)
    except BaseException:
        _stop(running)
        stack.state.unlink(missing_ok=True)
        raise
    say(
        f"up: imgworker api on 127.0.0.1:{ports['api']}, a worker (127.0.0.1:{ports['worker']}"
        f"/readyz), database {stack.database}, logs in {stack.directory / 'logs'}; stop with "
        "deploy/dev/stack.sh down"
    )
    return running


def down(stack: Stack, *, purge: bool) -> None:
    """Stop what ``up`` started; with ``purge``, drop its database, queues and directory."""
    running = _read_running(stack)
    if running is not None:
        _stop(running)
        stack.state.unlink(missing_ok=True)
        say(f"stopped {', '.join(running.processes)}")
    else:
        say(f"nothing running in {stack.directory}")
    if purge:
        asyncio.run(_drop_database(stack.database))
        asyncio.run(_delete_topology(stack.broker_prefix))
        shutil.rmtree(stack.directory, ignore_errors=True)
        say(f"purged database {stack.database}, its queues and {stack.directory}")


def exports(stack: Stack, running: Running) -> str:
    """The shell lines that point ``imgworker``, ``glance`` and ``openstack`` at the stack."""
    api = f"http://127.0.0.1:{running.ports['api']}"
    sample = f"http://127.0.0.1:{running.ports['sample']}/{SAMPLE}"
    return "\n".join(
        [
            f"export IMGWORKER_CONFIG={stack.config}",
            f"export OS_IMAGE_URL={api} OS_AUTH_TOKEN=unused",
            f"export OS_CLIENT_CONFIG_FILE={stack.directory / 'clouds.yaml'} OS_CLOUD={CLOUD}",
            f"export SAMPLE_IMAGE_URL={sample}",
            f'export PATH="{VENV_BIN}:{CLIENTS_BIN}:$PATH"',
        ]
    )


def _ports(free_ports: bool) -> dict[str, int]:
    if free_ports:
        return {name: _free_port() for name in DEFAULT_PORTS}
    for name, port in DEFAULT_PORTS.items():
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise StackError(
                    f"port {port} (for the {name}) is in use on 127.0.0.1: stop what holds it, "
                    "or ask for free ports: deploy/dev/stack.sh up --free-ports"
                )
    return dict(DEFAULT_PORTS)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _create_database(name: str) -> None:
    import asyncpg

    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StackError(
            f"PostgreSQL at {POSTGRES_ADMIN} does not let this user in ({exc}); start it, or "
            "point IMGWORKER_DEV_POSTGRES at a database where it may create databases"
        ) from exc
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
            say(f"created database {name}")
    finally:
        await connection.close()


async def _drop_database(name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _delete_topology(prefix: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(BROKER, timeout=10)
    async with connection:
        channel = await connection.channel()
        for queue in (f"{prefix}.tasks", f"{prefix}.dead"):
            await channel.queue_delete(queue)
        for exchange in (prefix, f"{prefix}.dlx"):
            await channel.exchange_delete(exchange)


def _write_config(stack: Stack, ports: dict[str, int]) -> None:
    d = stack.directory
    prefix = stack.broker_prefix
    stores = "".join(
        f'\n[stores.{name}]\ntype = "file"\npath = "{d / "stores" / name}"\n'
        for name in ("central", "dcn0", "dcn1")
    )
    stack.config.write_text(
        f"""# Written by deploy/dev/stack.sh up: its own database, queues, ports and directory.
[database]
url = "postgresql+asyncpg://postgres@127.0.0.1:5432/{stack.database}"

[broker]
url = "{BROKER}"
exchange = "{prefix}"
queue = "{prefix}.tasks"
dead_letter_exchange = "{prefix}.dlx"
dead_letter_queue = "{prefix}.dead"

[worker]
http = "127.0.0.1:{ports["worker"]}"

[staging]
dir = "{d / "staging"}"

[stores]
default = "central"
{stores}
[safety]
# The sample image is served from this host: trust it, and its port.
trusted_hosts = ["127.0.0.1"]
allowed_ports = [80, 443, {ports["sample"]}]
staging_min_free_bytes = 67108864

[api]
listen = "127.0.0.1:{ports["api"]}"
auth = "none"
"""
    )


def _write_clouds(stack: Stack, ports: dict[str, int]) -> None:
    """openstack's ``clouds.yaml``: the API itself, no Keystone (``[api] auth = "none"``)."""
    (stack.directory / "clouds.yaml").write_text(
        f"clouds:\n  {CLOUD}:\n    auth_type: none\n    auth:\n"
        f"      endpoint: http://127.0.0.1:{ports['api']}\n"
    )


def _make_sample(path: Path) -> None:
    """A small qcow2 (64 MiB virtual, 8 MiB of data) to import, made once."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [str(VENV_BIN / "python"), "-m", "tests.support.images", str(path)]
    subprocess.run(
        [*command, "--virtual-mib", "64", "--data-mib", "8"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _sample_server(stack: Stack, port: int) -> list[str]:
    return [
        str(VENV_BIN / "python"),
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        str(stack.directory / "www"),
        str(port),
    ]


def _start(
    stack: Stack, running: Running, name: str, command: list[str]
) -> subprocess.Popen[bytes]:
    logs = stack.directory / "logs"
    logs.mkdir(exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IMGWORKER_")}
    environment["IMGWORKER_CONFIG"] = str(stack.config)
    with open(logs / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=stack.directory,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the stack, which stops them in order
        )
    running.processes[name] = (process.pid, command)
    return process


def _wait_until_ready(
    stack: Stack, running: Running, children: dict[str, subprocess.Popen[bytes]]
) -> None:
    ports = running.ports
    checks = {
        "sample": f"http://127.0.0.1:{ports['sample']}/{SAMPLE}",
        "api": f"http://127.0.0.1:{ports['api']}/versions",
        "worker": f"http://127.0.0.1:{ports['worker']}/readyz",
    }
    deadline = time.monotonic() + READY_SECONDS
    waiting = dict(checks)
    while waiting:
        if STOP.is_set():
            raise StackError("interrupted while starting; stopped what had started")
        for name, url in list(waiting.items()):
            if children[name].poll() is not None:
                raise StackError(f"{name} stopped at start:\n{_tail(stack, name)}")
            if _answers(url):
                del waiting[name]
        if waiting and time.monotonic() > deadline:
            names = ", ".join(waiting)
            raise StackError(f"{names} not ready after {READY_SECONDS:g} s:\n{_tail(stack, names)}")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (URLError, OSError):
        return False


def _tail(stack: Stack, name: str) -> str:
    log = stack.directory / "logs" / f"{name.split(',')[0]}.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(lines[-15:])


def _stop(running: Running) -> None:
    """SIGTERM each process ``up`` started (the worker drains), then SIGKILL what remains."""
    alive = {n: p for n, (p, cmd) in running.processes.items() if _alive(p, cmd)}
    for pid in alive.values():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = {n: p for n, p in alive.items() if _alive(p, running.processes[n][1])}
    for pid in alive.values():
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int, command: list[str]) -> bool:
    """Whether ``pid`` still runs ``command`` (a recycled pid is someone else's)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    parts = [part.decode() for part in cmdline if part]
    # A script's first arguments are its interpreter and its path; the rest are as given.
    started = Path(command[0]).name in {Path(part).name for part in parts[:2]}
    return status != "Z" and started and parts[len(parts) - len(command) + 1 :] == command[1:]


def _read_running(stack: Stack) -> Running | None:
    try:
        data = json.loads(stack.state.read_text())
    except (OSError, ValueError):
        return None
    processes = {name: (int(pid), list(cmd)) for name, (pid, cmd) in data["processes"].items()}
    return Running(dict(data["ports"]), processes)


if __name__ == "__main__":
    sys.exit(main())
