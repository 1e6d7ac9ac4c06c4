"""The life of one store's RBD images: created, snapshotted, removed, and cleared of what an
earlier attempt left (freeing it of a dead writer first; see :mod:`flows.stores.rbd_leftover`).

Every operation here is idempotent for imgworker's own leftovers — an image or snapshot that
already exists, or is already gone, is met as the call would have left it — and refuses what
imgworker did not write. Every call blocks: the store runs them in worker threads.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from typing import Any

import rados
import rbd

from flows.errors import DataInUse, StoreFailed
from flows.stores.rbd_config import RbdStoreConfig
from flows.stores.rbd_leftover import Client, Leftover, Mark, WriterRelease
from flows.threads import check_stop

log = logging.getLogger(__name__)

SNAPSHOT = "snap"
#: RBD's layering feature: required to protect a snapshot (and to clone from it later).
FEATURE_LAYERING = 1
#: Seconds between looks at a leftover's watchers while they go.
WATCH_POLL_SECONDS = 0.5


class RbdImages:
    """The RBD images of store ``store`` (one pool of one cluster)."""

    def __init__(self, store: str, config: RbdStoreConfig) -> None:
        self.store = store
        self.config = config
        #: How a dead writer is freed; the store sets it from the cluster's configuration.
        self.release = WriterRelease()

    def create(
        self, cluster: Any, ioctx: Any, image_id: str, size: int, stop: threading.Event
    ) -> None:
        """Create the image; one that exists already is an earlier attempt's: cleared first."""
        try:
            self._create(ioctx, image_id, size)
        except rbd.ImageExists:
            log.info(
                "rbd image %s/%s already exists in %s: clearing it before writing",
                self.config.pool,
                image_id,
                self.store,
            )
            self.clear(cluster, ioctx, image_id, stop)
            self._create(ioctx, image_id, size)

    def _create(self, ioctx: Any, image_id: str, size: int) -> None:
        rbd.RBD().create(
            ioctx,
            image_id,
            size,
            order=object_order(self.config.chunk_size),
            old_format=False,
            features=FEATURE_LAYERING,
        )

    # -- removing ----------------------------------------------------------------------

    def remove(self, ioctx: Any, image_id: str) -> None:
        """Unprotect and remove the snapshots, then the image; missing pieces are fine.

        A snapshot with clones (a VM or volume booted from the image) cannot be unprotected:
        that raises :class:`DataInUse`, and the data stays until the clones are gone.
        """
        try:
            with rbd.Image(ioctx, image_id) as image:
                for snap in list(image.list_snaps()):
                    self._remove_snapshot(image, image_id, snap["name"])
        except rbd.ImageNotFound:
            return
        with contextlib.suppress(rbd.ImageNotFound):
            rbd.RBD().remove(ioctx, image_id)

    def _remove_snapshot(self, image: Any, image_id: str, snapshot: str) -> None:
        with contextlib.suppress(rbd.ImageNotFound):  # removed meanwhile
            if image.is_protected_snap(snapshot):
                self._unprotect(image, image_id, snapshot)
            image.remove_snap(snapshot)

    def _unprotect(self, image: Any, image_id: str, snapshot: str) -> None:
        try:
            image.unprotect_snap(snapshot)
        except rbd.InvalidArgument:
            return  # unprotected meanwhile
        except rbd.ImageBusy as exc:
            children = ", ".join("/".join(child) for child in image.list_children()) or "unknown"
            raise DataInUse(
                self.store,
                f"rbd image {self.config.pool}/{image_id}@{snapshot} still has clones "
                f"({children}); it is removed once they are gone",
            ) from exc

    def remove_after_failure(self, ioctx: Any, image_id: str) -> None:
        """Remove a write's own partial image; if that fails too, the next attempt clears it."""
        try:
            self.remove(ioctx, image_id)
        except (rados.Error, rbd.Error, DataInUse) as exc:
            log.warning(
                "could not remove the partial rbd image %s/%s from %s (%s: %s); the next "
                "attempt clears it",
                self.config.pool,
                image_id,
                self.store,
                type(exc).__name__,
                exc,
            )

    # -- clearing what an earlier attempt left ---------------------------------------------

    def clear(self, cluster: Any, ioctx: Any, image_id: str, stop: threading.Event) -> None:
        """Remove what an earlier attempt left under ``image_id``, freeing it of a dead
        writer first; refuse (:class:`StoreFailed`) an image imgworker did not write."""
        leftover = self._inspect(ioctx, image_id)
        if leftover is None:
            return
        if not leftover.owned():
            raise StoreFailed(self.store, leftover.refusal())
        log.info(
            "clearing rbd image %s in %s, left by %s", leftover.name, self.store, leftover.whose()
        )
        if leftover.watchers:
            self._free(cluster, ioctx, leftover, stop)
        self.remove(ioctx, image_id)

    def _inspect(self, ioctx: Any, image_id: str) -> Leftover | None:
        """What is under ``image_id`` (None: nothing). Read-only: adds no watch of its own."""
        try:
            with rbd.Image(ioctx, image_id, read_only=True) as image:
                mark = Mark.read(image.metadata_list())
                snapshots = tuple(str(snap["name"]) for snap in image.list_snaps())
                watchers = _watchers(image)
                holds_data = mark is None and not snapshots and _holds_data(image)
        except rbd.ImageNotFound:
            return None
        return Leftover(self.config.pool, image_id, mark, snapshots, watchers, holds_data)

    def _free(self, cluster: Any, ioctx: Any, leftover: Leftover, stop: threading.Event) -> None:
        """Rid ``leftover`` of its watchers: blocklist the dead writer, wait out the rest.

        Raises :class:`DataInUse` (retry later) when a watch outlives the watch timeout:
        a live client still uses the image.
        """
        dead = leftover.dead_writers()
        waits = [
            f"{watcher}: not the writer its mark names, so perhaps a live client"
            for watcher in leftover.watchers
            if watcher not in dead
        ]
        if dead:
            unable = self._blocklist(cluster, leftover, dead)
            if unable is not None:
                waits.append(f"{', '.join(map(str, dead))}: {unable}")
        limit = self.release.wait_limit()
        if waits:
            log.warning(
                "rbd image %s in %s is still watched (%s); waiting up to %g s for the "
                "watch to expire",
                leftover.name,
                self.store,
                "; ".join(waits),
                limit,
            )
        started = time.monotonic()
        remaining = self._wait_for_watchers(ioctx, leftover.image_id, limit, stop)
        if remaining:
            raise DataInUse(
                self.store,
                f"rbd image {leftover.name} is still watched by "
                f"{', '.join(map(str, remaining))} {limit:g} s later: a live client uses it "
                "(a mapping, another writer); it is cleared on a later retry once that client "
                "lets go",
            )
        if waits:
            log.info(
                "the watch on rbd image %s in %s expired after %.1f s",
                leftover.name,
                self.store,
                time.monotonic() - started,
            )

    def _blocklist(self, cluster: Any, leftover: Leftover, dead: list[Client]) -> str | None:
        """Blocklist the leftover's dead writer; None when done, else why it was not."""
        if not self.release.blocklist:
            return "rbd_blocklist_on_break_lock is false, so it is not blocklisted"
        try:
            for client in dead:
                cluster.blocklist_add(client.address, self.release.expire_seconds)
            cluster.wait_for_latest_osdmap()
        except rados.PermissionDeniedError as exc:
            return (
                f"the Ceph user {self.config.user!r} may not blocklist it ({exc}); give it "
                "the mon cap 'profile rbd'"
            )
        except rados.Error as exc:
            return f"blocklisting it failed ({type(exc).__name__}: {exc})"
        for client in dead:
            log.info(
                "freed rbd image %s in %s: blocklisted %s, which wrote it for %s and whose "
                "worker no longer holds the import",
                leftover.name,
                self.store,
                client,
                leftover.whose_task(),
            )
        return None

    def _wait_for_watchers(
        self, ioctx: Any, image_id: str, limit: float, stop: threading.Event
    ) -> tuple[Client, ...]:
        """Wait up to ``limit`` seconds for the image's watchers to go; return those left."""
        deadline = time.monotonic() + limit
        while True:
            try:
                with rbd.Image(ioctx, image_id, read_only=True) as image:
                    watchers = _watchers(image)
            except rbd.ImageNotFound:
                return ()
            if not watchers or time.monotonic() >= deadline:
                return watchers
            check_stop(stop)
            time.sleep(WATCH_POLL_SECONDS)


def snapshot(image: Any) -> None:
    """Create and protect ``snap``; what an earlier call already did is left as it is."""
    if SNAPSHOT not in {snap["name"] for snap in image.list_snaps()}:
        image.create_snap(SNAPSHOT)
    if not image.is_protected_snap(SNAPSHOT):
        image.protect_snap(SNAPSHOT)


def mark(image: Any, owner: Mark) -> None:
    """Record who writes ``image`` in its metadata (what a takeover reads)."""
    for key, value in owner.metadata().items():
        image.metadata_set(key, value)


def object_order(chunk_size: int) -> int:
    """RBD's object size as a power of two: the chunk size rounded down, 4 KiB to 32 MiB."""
    return min(max(int(math.log2(max(chunk_size, 4096))), 12), 25)


def _watchers(image: Any) -> tuple[Client, ...]:
    return tuple(Client(int(w["id"]), str(w["addr"])) for w in image.watchers_list())


def _holds_data(image: Any) -> bool:
    """Whether any extent of the image holds data."""
    found: list[int] = []

    def extent(_offset: int, length: int, exists: bool) -> None:
        if exists:
            found.append(length)

    image.diff_iterate(0, image.size(), None, extent)
    return bool(found)
