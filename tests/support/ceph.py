"""Throwaway Ceph clusters for the tests (deploy/dev/ceph-up.sh / ceph-down.sh)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import require_program

ROOT = Path(__file__).resolve().parents[2]
UP = ROOT / "deploy" / "dev" / "ceph-up.sh"
DOWN = ROOT / "deploy" / "dev" / "ceph-down.sh"


@dataclass(frozen=True)
class LinkSample:
    """A site link's counters at one moment (``time.monotonic()`` seconds, bytes)."""

    at: float
    #: Bytes the host sent to the site (writes), as its end of the veth pair counts them.
    sent: int
    #: Bytes the site sent back (reads, acknowledgements).
    received: int
    #: Times the host end's tbf held a packet back because the rate was used up.
    overlimits: int


@dataclass(frozen=True)
class Site:
    """An edge site: a cluster's network namespace behind a tbf-shaped veth pair.

    Read from the ``site.env`` that ``ceph-up.sh`` records in the cluster's directory.
    """

    netns: str
    host_veth: str
    site_veth: str
    host_addr: str
    site_addr: str
    #: The rate the host end's tbf enforces, in bytes per second (as the kernel reports it).
    rate: int

    @classmethod
    def load(cls, directory: Path) -> Site | None:
        """The site of the cluster in ``directory``, or None when it runs on 127.0.0.1."""
        record = directory / "site.env"
        if not record.exists():
            return None
        values = dict(line.split("=", 1) for line in record.read_text().splitlines() if "=" in line)
        host_veth = values["host_veth"]
        return cls(
            netns=values["netns"],
            host_veth=host_veth,
            site_veth=values["site_veth"],
            host_addr=values["host_addr"],
            site_addr=values["site_addr"],
            rate=int(_tbf(host_veth)["options"]["rate"]),
        )

    def sample(self) -> LinkSample:
        """Read the link's byte counters now (the host's end of the veth pair)."""
        statistics = Path("/sys/class/net") / self.host_veth / "statistics"
        return LinkSample(
            at=time.monotonic(),
            sent=int((statistics / "tx_bytes").read_text()),
            received=int((statistics / "rx_bytes").read_text()),
            overlimits=int(_tbf(self.host_veth)["overlimits"]),
        )

    def busy(self, before: LinkSample, after: LinkSample, *, towards_site: bool = True) -> float:
        """How busy the link was between two samples: bytes carried over the window /
        (rate × window); 1.0 is the configured rate. Towards the site by default (writes);
        ``towards_site=False`` measures what came back (reads)."""
        sent, received = after.sent - before.sent, after.received - before.received
        return (sent if towards_site else received) / (self.rate * (after.at - before.at))


def _tbf(device: str) -> dict[str, Any]:
    """The tbf root qdisc of ``device``, as ``tc -s -j qdisc show`` reports it."""
    shown = subprocess.run(
        ["tc", "-s", "-j", "qdisc", "show", "dev", device],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    (qdisc,) = [entry for entry in json.loads(shown) if entry["kind"] == "tbf"]
    return dict(qdisc)


@dataclass(frozen=True)
class Cluster:
    """One running cluster: its conf, fsid, directory, and its site when it is one."""

    conf: str
    fsid: str
    directory: Path
    site: Site | None = None

    def bluestore_allocated(self) -> int:
        """Bytes the (BlueStore) OSD has allocated on its device, from its perf counters."""
        (socket,) = (self.directory / "run").glob("osd.*.asok")
        dump = subprocess.run(
            ["ceph", "--admin-daemon", str(socket), "perf", "dump"],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        return int(json.loads(dump)["bluestore"]["bluestore_allocated"])

    def osd_pid(self) -> int:
        """The pid of the cluster's only OSD."""
        (pidfile,) = (self.directory / "run").glob("osd.*.pid")
        return int(pidfile.read_text().strip())

    def rbd(self, *args: str) -> str:
        """Run the ``rbd`` tool against this cluster's ``images`` pool; return stdout."""
        return subprocess.run(
            ["rbd", "-c", self.conf, "-p", "images", *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    def images(self) -> list[str]:
        """The RBD images in the pool."""
        return sorted(json.loads(self.rbd("ls", "--format", "json") or "[]"))

    def used_bytes(self, image: str) -> int:
        """``rbd du``'s used size: whole RADOS objects touched (coarse without fast-diff)."""
        report = json.loads(self.rbd("du", image, "--format", "json"))
        return max(int(entry["used_size"]) for entry in report["images"])

    def allocated_bytes(self, image: str) -> int:
        """Bytes of ``image`` that hold data, as librbd's diff_iterate reports extents."""
        import rados
        import rbd

        extents: list[int] = []
        with (
            rados.Rados(conffile=self.conf) as cluster,
            cluster.open_ioctx("images") as ioctx,
            rbd.Image(ioctx, image, read_only=True) as handle,
        ):
            handle.diff_iterate(
                0,
                handle.size(),
                None,
                lambda _o, length, exists: extents.append(length) if exists else None,
            )
        return sum(extents)

    @contextmanager
    def osd_paused(self) -> Iterator[None]:
        """Freeze the OSD (SIGSTOP) inside the block: the site looks dead, then comes back."""
        pid = self.osd_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)


def leave_a_dead_writer(conf: str, image: str, task: str) -> None:
    """Start an rbd store write of ``image`` as ``task`` in another process and SIGKILL it
    half-way: the image stays, watched by the dead writer until Ceph's watch timeout."""
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.support.rbd_writer_main", conf, image, task],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert writer.stdout is not None
    try:
        line = writer.stdout.readline()
    finally:
        writer.kill()
        writer.wait()
    assert line.strip() == "writing", f"the writer did not start: {line}{writer.stdout.read()}"


def require_ceph() -> None:
    """Fail (never skip) when Ceph's daemons or bindings are missing, naming the fix."""
    missing = [
        tool for tool in ("ceph-mon", "ceph-osd", "rbd", "uuidgen") if shutil.which(tool) is None
    ]
    try:
        import rados  # noqa: F401
        import rbd  # noqa: F401
    except ImportError:
        missing.append("python bindings in .venv")
    if missing:
        pytest.fail(
            f"Ceph is not installed ({', '.join(missing)}): run deploy/dev/ceph-install.sh",
            pytrace=False,
        )


def require_sites() -> None:
    """Fail (never skip) when what makes sites is missing: root, ip and tc (iproute2)."""
    for tool in ("ip", "tc"):
        require_program(tool, "iproute2")
    if os.geteuid() != 0:
        pytest.fail("rate-limited Ceph sites need root (network namespaces)", pytrace=False)


def _cluster(conf: str) -> Cluster:
    directory = Path(conf).parent
    fsid = (directory / "fsid").read_text().strip()
    return Cluster(conf, fsid, directory, Site.load(directory))


@contextmanager
def running_clusters(
    count: int, directory: Path, objectstore: str = "memstore", rate: str | None = None
) -> Iterator[list[Cluster]]:
    """Start ``count`` clusters under ``directory``; stop them (by pid) afterwards.

    ``memstore`` is fastest; ``bluestore`` (a sparse file) accounts allocation for real.
    With ``rate`` (tc's units: ``"200mbit"``) each cluster is an edge site in its own network
    namespace behind a link shaped to that rate (``Cluster.site``); ceph-down.sh removes it.
    """
    require_ceph()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEPH_SITE_RATE")}
    env["CEPH_OBJECTSTORE"] = objectstore
    if rate is not None:
        require_sites()
        env["CEPH_SITE_RATE"] = rate
    try:
        started = subprocess.run(
            [str(UP), str(count), str(directory)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        yield [_cluster(conf) for conf in started.stdout.split()]
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"Ceph clusters did not start:\n{exc.stderr}", pytrace=False)
    finally:
        subprocess.run([str(DOWN), str(directory)], check=False, timeout=120)
