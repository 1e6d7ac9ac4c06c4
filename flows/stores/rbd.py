"""The Ceph RBD store: an image per image id, a protected snapshot ``snap``, sparse writes.

``add`` creates the RBD image at its final size, marks it with the task and the client that
writes it, writes the data segments with several ``aio_write`` calls in flight, skips zero
runs (holes are never even read), then creates and protects ``snap``; the location is
``rbd://<fsid>/<pool>/<image>/snap``, as glance_store writes it. Anything that fails on the
way removes the snapshot and the image again, so a failed write leaves no orphan. librbd's
calls block, so every one runs in a worker thread; the connect and operation timeouts make a
dead cluster fail its store within seconds.

Each write has a librados client of its own, so that a worker killed mid-write leaves a
watch that names exactly that write: the task that takes the import over blocklists it and
clears the image at once (:mod:`flows.stores.rbd_images` does; :mod:`flows.stores.rbd_leftover`
says whose a leftover is and how it is freed). Reads and removals share one client per store.

``rados`` and ``rbd`` (Debian's python3-rados/python3-rbd; see deploy/dev/ceph-install.sh)
are imported only by this module, which the store registry imports only when an rbd store
is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import rados
import rbd

from flows.errors import StoreError, StoreFailed, StoreUnavailable
from flows.sparse import ImageReader, Segment, is_all_zero, split_zero_runs
from flows.stores.base import ProgressCallback, StoredImage
from flows.stores.rbd_config import RbdStoreConfig
from flows.stores.rbd_images import SNAPSHOT, RbdImages, mark, snapshot
from flows.stores.rbd_leftover import Client, Mark, WriterRelease
from flows.threads import check_stop, run_stoppable

log = logging.getLogger(__name__)

#: Errors that say the cluster could not be reached in time (worth retrying later).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    rados.TimedOut,
    rados.ConnectionShutdown,
    rbd.Timeout,
    rbd.ConnectionShutdown,
    TimeoutError,
)
#: Everything librados/librbd (and the threads around them) raise about the cluster.
CEPH_ERRORS: tuple[type[BaseException], ...] = (rados.Error, rbd.Error, OSError)


@dataclass(frozen=True, slots=True)
class RbdLocation:
    """The parts of ``rbd://<fsid>/<pool>/<image>/<snapshot>``."""

    fsid: str
    pool: str
    image: str
    snapshot: str

    @classmethod
    def parse(cls, url: str) -> RbdLocation:
        """Split an rbd URL; raise ValueError when it is not one."""
        if not url.startswith("rbd://"):
            raise ValueError(f"{url!r} is not an rbd:// location")
        parts = url[len("rbd://") :].split("/")
        if len(parts) != 4 or not all(parts):
            raise ValueError(f"{url!r} is not rbd://<fsid>/<pool>/<image>/<snapshot>")
        return cls(*parts)

    def url(self) -> str:
        """The URL form."""
        return f"rbd://{self.fsid}/{self.pool}/{self.image}/{self.snapshot}"


class RbdStore:
    """One pool of one Ceph cluster (see the module docstring)."""

    def __init__(self, name: str, config: RbdStoreConfig) -> None:
        self._name = name
        self.config = config
        self._cluster: Any = None
        self._fsid: str | None = None
        self._connect_lock = threading.Lock()
        self._images = RbdImages(name, config)

    @property
    def name(self) -> str:
        """The store's configured name."""
        return self._name

    # -- connection --------------------------------------------------------------------

    def _new_client(self) -> Any:
        """A connected librados client with the store's user, conf and timeouts."""
        options = {
            "client_mount_timeout": str(math.ceil(self.config.connect_timeout)),
            "rados_mon_op_timeout": str(math.ceil(self.config.operation_timeout)),
            "rados_osd_op_timeout": str(math.ceil(self.config.operation_timeout)),
        }
        if self.config.keyring:
            options["keyring"] = self.config.keyring
        cluster = rados.Rados(conffile=self.config.conf, rados_id=self.config.user, conf=options)
        try:
            cluster.connect(timeout=math.ceil(self.config.connect_timeout))
        except BaseException:
            with contextlib.suppress(Exception):
                cluster.shutdown()
            raise
        return cluster

    def _connect(self) -> Any:
        with self._connect_lock:
            if self._cluster is None:
                cluster = self._new_client()
                self._fsid = str(cluster.get_fsid())
                self._images.release = WriterRelease.from_conf(cluster.conf_get)
                self._cluster = cluster
            return self._cluster

    @contextlib.contextmanager
    def _writer(self) -> Iterator[tuple[Any, Client]]:
        """A client of its own for one write, and who it is (what a takeover blocklists)."""
        cluster = self._new_client()
        try:
            yield cluster, Client(int(cluster.get_instance_id()), str(cluster.get_addrs()))
        finally:
            cluster.shutdown()

    async def connect(self) -> str:
        """Connect now (instead of at the first operation); return the cluster's fsid."""
        await self._run("connecting", lambda stop: self._connect())
        return str(self._fsid)

    async def close(self) -> None:
        """Disconnect from the cluster."""
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            await asyncio.to_thread(cluster.shutdown)

    async def _run(self, action: str, work: Any) -> Any:
        """Run blocking ``work(stop)``; turn Ceph's errors into :meth:`failure`'s."""
        try:
            return await run_stoppable(work)
        except CEPH_ERRORS as exc:
            raise self.failure(action, exc) from exc

    def failure(self, action: str, error: BaseException) -> StoreError:
        """The typed error for Ceph's ``error`` while ``action``: a cluster that did not answer
        in time is :class:`StoreUnavailable`, anything else :class:`StoreFailed`."""
        kind = StoreUnavailable if isinstance(error, TRANSIENT_ERRORS) else StoreFailed
        return kind(
            self.name,
            f"{action} in pool {self.config.pool!r} ({self.config.conf}) failed: "
            f"{type(error).__name__}: {error}",
        )

    # -- writing -----------------------------------------------------------------------

    async def add(
        self,
        image_id: str,
        reader: ImageReader,
        progress: ProgressCallback | None = None,
        *,
        task_id: str = "",
    ) -> StoredImage:
        """Create the RBD image, mark it as ``task_id``'s, write it sparsely, snapshot and
        protect it. What an earlier attempt left under the name is cleared first."""
        result: StoredImage = await self._run(
            "writing image", lambda stop: self._add(image_id, reader, progress, stop, task_id)
        )
        return result

    def _add(
        self,
        image_id: str,
        reader: ImageReader,
        progress: ProgressCallback | None,
        stop: threading.Event,
        task_id: str,
    ) -> StoredImage:
        self._connect()  # the fsid, and how a dead writer is freed
        with self._writer() as (cluster, writer), cluster.open_ioctx(self.config.pool) as ioctx:
            self._images.create(cluster, ioctx, image_id, reader.size, stop)
            try:
                with rbd.Image(ioctx, image_id) as image:
                    mark(image, Mark(task_id, writer))
                    written, skipped = self._write(image, reader, progress, stop)
                    image.flush()
                    snapshot(image)
            except BaseException as exc:
                log.warning(
                    "rbd write of %s to %s failed, removing it: %s", image_id, self.name, exc
                )
                self._images.remove_after_failure(ioctx, image_id)
                raise
        url = RbdLocation(str(self._fsid), self.config.pool, image_id, SNAPSHOT).url()
        return StoredImage(url, reader.size, written, skipped)

    def _write(
        self,
        image: Any,
        reader: ImageReader,
        progress: ProgressCallback | None,
        stop: threading.Event,
    ) -> tuple[int, int]:
        in_flight = max(1, self.config.writes_in_flight)
        slots = threading.Semaphore(in_flight)
        errors: list[str] = []
        written = skipped = 0

        def done(completion: Any) -> None:
            code = completion.get_return_value()
            if code < 0:
                errors.append(f"aio_write returned {code}")
            slots.release()

        try:
            for segment in reader.segments(self.config.chunk_size):
                check_stop(stop)
                if errors:
                    break
                data = segment.data
                if data is None or is_all_zero(data):
                    if self.config.thin_provisioning:
                        skipped += segment.length
                        if progress:
                            progress(0, segment.length)
                        continue
                    data = data or bytes(segment.length)
                self._acquire(slots, stop)
                image.aio_write(data, segment.offset, done)
                written += segment.length
                if progress:
                    progress(segment.length, 0)
        finally:
            for _ in range(in_flight):  # wait for every write still in flight
                slots.acquire()
        if errors:
            raise OSError(f"{len(errors)} write(s) failed: {errors[0]}")
        return written, skipped

    def _acquire(self, slots: threading.Semaphore, stop: threading.Event) -> None:
        while not slots.acquire(timeout=1.0):
            check_stop(stop)

    # -- removing ----------------------------------------------------------------------

    def _remove_by_name(self, image_id: str) -> None:
        cluster = self._connect()
        with cluster.open_ioctx(self.config.pool) as ioctx:
            self._images.remove(ioctx, image_id)

    async def discard(self, image_id: str) -> None:
        """Remove what an earlier attempt left of ``image_id``, finished or partial, freeing
        it of a dead writer; an image imgworker did not write is refused, never removed."""

        def clear(stop: threading.Event) -> None:
            cluster = self._connect()
            with cluster.open_ioctx(self.config.pool) as ioctx:
                self._images.clear(cluster, ioctx, image_id, stop)

        await self._run("discarding image", clear)

    async def delete(self, url: str) -> None:
        """Remove the image behind ``url`` (and its snapshot); a missing image is fine."""
        location = self._location(url)
        await self._run("deleting image", lambda stop: self._remove_by_name(location.image))

    # -- reading -----------------------------------------------------------------------

    async def open(self, url: str) -> ImageReader:
        """A reader over the snapshot of an existing location (copy-image's source)."""
        location = self._location(url)
        size: int = await self._run("opening image", lambda stop: self._snapshot_size(location))
        return RbdReader(self, location, size)

    def _snapshot_size(self, location: RbdLocation) -> int:
        cluster = self._connect()
        with (
            cluster.open_ioctx(location.pool) as ioctx,
            rbd.Image(ioctx, location.image, snapshot=location.snapshot, read_only=True) as image,
        ):
            return int(image.size())

    async def exists(self, url: str) -> bool:
        """True when the image and its snapshot exist."""
        location = self._location(url)

        def check(stop: threading.Event) -> bool:
            try:
                self._snapshot_size(location)
            except (rbd.ImageNotFound, rbd.ObjectNotFound):
                return False
            return True

        result: bool = await self._run("checking image", check)
        return result

    def owns(self, url: str) -> bool:
        """True for rbd URLs of this store's pool (and cluster, once its fsid is known)."""
        try:
            location = RbdLocation.parse(url)
        except ValueError:
            return False
        if location.pool != self.config.pool:
            return False
        return self._fsid is None or location.fsid == self._fsid

    def _location(self, url: str) -> RbdLocation:
        location = RbdLocation.parse(url)
        if not self.owns(url):
            raise ValueError(f"{url!r} is not a location of rbd store {self.name!r}")
        return location


class RbdReader:
    """An :class:`ImageReader` over an RBD snapshot: unallocated extents come out as zeros."""

    def __init__(self, store: RbdStore, location: RbdLocation, size: int) -> None:
        self._store = store
        self._location = location
        self._size = size

    @property
    def size(self) -> int:
        """The image's size."""
        return self._size

    def close(self) -> None:
        """Nothing held between reads: each :meth:`segments` opens and closes the image."""

    def segments(self, chunk_size: int = 8 * 1024 * 1024) -> Iterator[Segment]:
        """Yield allocated extents (read in chunks) and the zero runs between them.

        A cluster that stops answering mid-read raises the store's typed error, as every
        other operation of the store does (:meth:`RbdStore.failure`).
        """
        try:
            yield from self._segments(chunk_size)
        except CEPH_ERRORS as exc:
            raise self._store.failure("reading image", exc) from exc

    def _segments(self, chunk_size: int) -> Iterator[Segment]:
        cluster = self._store._connect()
        location = self._location
        with (
            cluster.open_ioctx(location.pool) as ioctx,
            rbd.Image(ioctx, location.image, snapshot=location.snapshot, read_only=True) as image,
        ):
            extents: list[tuple[int, int]] = []

            def found(offset: int, length: int, exists: bool) -> None:
                if exists:
                    extents.append((offset, length))

            image.diff_iterate(0, self._size, None, found)
            position = 0
            for start, length in _merge(sorted(extents)):
                if start > position:
                    yield Segment(position, start - position, None)
                offset, end = start, start + length
                while offset < end:
                    want = min(chunk_size, end - offset)
                    yield from split_zero_runs(offset, image.read(offset, want))
                    offset += want
                position = end
            if position < self._size:
                yield Segment(position, self._size - position, None)


def writer_release(config: RbdStoreConfig) -> WriterRelease:
    """How a takeover frees a dead writer in this store, as its ceph.conf says (no connection;
    the options a running store reads again from the cluster it connects to)."""
    cluster = rados.Rados(conffile=config.conf, rados_id=config.user)
    try:
        return WriterRelease.from_conf(cluster.conf_get)
    finally:
        cluster.shutdown()


def _merge(extents: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    current: tuple[int, int] | None = None
    for start, length in extents:
        if current is not None and start <= current[0] + current[1]:
            end = max(current[0] + current[1], start + length)
            current = (current[0], end - current[0])
            continue
        if current is not None:
            yield current
        current = (start, length)
    if current is not None:
        yield current
