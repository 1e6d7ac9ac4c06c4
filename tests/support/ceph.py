"""Throwaway Ceph clusters for the tests (deploy/dev/ceph-up.sh / ceph-down.sh)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UP = ROOT / "deploy" / "dev" / "ceph-up.sh"
DOWN = ROOT / "deploy" / "dev" / "ceph-down.sh"


@dataclass(frozen=True)
class Cluster:
    """One running cluster: its conf, fsid and directory."""

    conf: str
    fsid: str
    directory: Path

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


def require_ceph() -> None:
    """Fail (never skip) when Ceph's daemons or bindings are missing, naming the fix."""
    missing = [tool for tool in ("ceph-mon", "ceph-osd", "rbd") if shutil.which(tool) is None]
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


@contextmanager
def running_clusters(
    count: int, directory: Path, objectstore: str = "memstore"
) -> Iterator[list[Cluster]]:
    """Start ``count`` clusters under ``directory``; stop them (by pid) afterwards.

    ``memstore`` is fastest; ``bluestore`` (a sparse file) accounts allocation for real.
    """
    require_ceph()
    try:
        started = subprocess.run(
            [str(UP), str(count), str(directory)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, CEPH_OBJECTSTORE=objectstore),
        )
        confs = started.stdout.split()
        clusters = [
            Cluster(conf, (Path(conf).parent / "fsid").read_text().strip(), Path(conf).parent)
            for conf in confs
        ]
        yield clusters
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"Ceph clusters did not start:\n{exc.stderr}", pytrace=False)
    finally:
        subprocess.run([str(DOWN), str(directory)], check=False, timeout=120)
