"""The cache directory of one node: its entries, what they take, and the hard size limit.

Layout under ``[cache] dir``::

    .lock               held (flock) by the one API process that owns the directory
    incomplete/<id>.<n> a fill in progress (never served as an entry; gone at the next start)
    images/<id>         an entry (see worker.cache.entry_file)

Every byte is accounted before it is written: a fill first *reserves* its entry's whole
footprint, evicting least recently used entries that nobody reads until it fits, or gets
nothing (and its download is served uncached). An entry removed while downloads still read
it stays counted until the last of them closes it: the disk holds its blocks until then.
The accounting runs on the event loop without awaiting, so two reservations never race;
files are removed by the caller, in a thread, before the space is reused.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from worker.cache.entry_file import EntryFacts, footprint, read_trailer
from worker.cache.errors import CacheDirectoryUnusable, InvalidEntry

log = logging.getLogger(__name__)


@dataclass
class Entry:
    """One image held by this node."""

    image_id: str
    facts: EntryFacts
    path: Path
    #: Epoch seconds of the last download that read it, and of its fill.
    last_accessed: float
    last_modified: float
    hits: int = 0
    #: Downloads reading it now: it is never evicted while any does.
    readers: int = 0
    #: Removed from the cache while read: its bytes stay counted until the last reader leaves.
    removed: bool = False

    @property
    def footprint(self) -> int:
        """Bytes it takes on disk, trailer included."""
        return footprint(self.facts.size)


@dataclass
class Reservation:
    """Room for one fill, and what was evicted to make it (whose files the caller removes)."""

    image_id: str
    size: int
    evicted: list[Entry] = field(default_factory=list)


@dataclass(frozen=True)
class Recovery:
    """What :meth:`CacheDirectory.recover` found at start."""

    entries: list[Entry]
    #: Files that were not entries (partial fills of a process that died, damaged trailers).
    removed: list[str]


class CacheDirectory:
    """The entries of ``root`` and the bytes they take, never more than ``max_size``."""

    def __init__(self, root: Path, max_size: int) -> None:
        self.root = root
        self.max_size = max_size
        self._entries: dict[str, Entry] = {}
        #: Bytes of entries (removed ones still read included) and of reservations.
        self.used = 0
        self._lock_fd: int | None = None

    @property
    def incomplete(self) -> Path:
        """Where fills write."""
        return self.root / "incomplete"

    @property
    def images(self) -> Path:
        """Where entries live."""
        return self.root / "images"

    def partial_path(self, image_id: str) -> Path:
        """A new file for a fill of ``image_id`` to write (each fill its own: one that ended
        may still be removing its file when the next one starts)."""
        return self.incomplete / f"{image_id}.{uuid.uuid4().hex[:12]}"

    def entry_path(self, image_id: str) -> Path:
        """The file of ``image_id``'s entry."""
        return self.images / image_id

    # -- start and stop (blocking: call from a thread) -----------------------------------

    def lock(self) -> None:
        """Take the directory for this process, or raise :class:`CacheDirectoryUnusable`."""
        try:
            for place in (self.root, self.incomplete, self.images):
                place.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CacheDirectoryUnusable(
                f"[cache] dir {self.root} cannot be used: {exc.strerror}; make it a writable "
                "directory of this process's user"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CacheDirectoryUnusable(
                f"[cache] dir {self.root} is in use by another process; give each imgworker "
                "api process a cache directory of its own"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        """Let another process take the directory."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def recover(self) -> Recovery:
        """Index the entries on disk; remove partial fills and files that are no entries.

        Run once at start, under :meth:`lock`: no fill of this process exists yet, so every
        file in ``incomplete/`` was left by one that died (killed, or the host lost power).
        """
        removed = [path.name for path in self.incomplete.iterdir() if _remove(path)]
        entries = []
        for path in sorted(self.images.iterdir()):
            try:
                entries.append(_indexed(path))
            except (InvalidEntry, OSError) as exc:
                log.warning("cache: removing %s: not a valid entry (%s)", path, exc)
                if _remove(path):
                    removed.append(path.name)
        for entry in entries:
            self._entries[entry.image_id] = entry
            self.used += entry.footprint
        return Recovery(entries, removed)

    # -- the index (event loop, no awaiting) ---------------------------------------------

    def get(self, image_id: str) -> Entry | None:
        """The entry of ``image_id``, if this node holds it."""
        return self._entries.get(image_id)

    def entries(self) -> list[Entry]:
        """Every entry, least recently used first."""
        return sorted(self._entries.values(), key=lambda e: (e.last_accessed, e.image_id))

    def open_entry(self, entry: Entry) -> None:
        """A download starts reading ``entry``: count the hit, keep it from eviction."""
        self.pin(entry)
        entry.hits += 1
        entry.last_accessed = time.time()

    def pin(self, entry: Entry) -> None:
        """Keep ``entry`` from eviction until :meth:`close_entry`."""
        entry.readers += 1

    def close_entry(self, entry: Entry) -> None:
        """A download stopped reading ``entry``; a removed entry's bytes are free once unread."""
        entry.readers -= 1
        if entry.removed and entry.readers == 0:
            self.used -= entry.footprint

    def reserve(self, image_id: str, size: int) -> Reservation | None:
        """Room for a fill of ``size`` bytes, evicting unread entries LRU first; None if none.

        The caller removes the evicted entries' files before it writes a byte.
        """
        need = footprint(size)
        if need > self.max_size:
            return None
        victims: list[Entry] = []
        room = self.max_size - self.used
        for entry in self.entries():
            if room >= need:
                break
            if entry.readers == 0:
                victims.append(entry)
                room += entry.footprint
        if room < need:
            return None
        for victim in victims:
            self.remove(victim.image_id)
        self.used += need
        return Reservation(image_id, need, victims)

    def release(self, reservation: Reservation) -> None:
        """A fill failed: give its room back."""
        self.used -= reservation.size

    def admit(self, reservation: Reservation, entry: Entry) -> None:
        """A fill became ``entry`` (its file already renamed into ``images/``)."""
        assert reservation.size == entry.footprint, "a fill's entry is the size it reserved"
        self._entries[entry.image_id] = entry

    def remove(self, image_id: str) -> Entry | None:
        """Forget ``image_id``'s entry (the caller removes its file); None if not held."""
        entry = self._entries.pop(image_id, None)
        if entry is None:
            return None
        entry.removed = True
        if entry.readers == 0:
            self.used -= entry.footprint
        return entry

    def over_limit(self) -> list[Entry]:
        """Unread entries to remove, LRU first, to bring the cache within ``max_size``.

        Only after ``max_size`` was lowered (a restart with a smaller limit) is there any:
        reservations never overrun it.
        """
        excess = self.used - self.max_size
        chosen = []
        for entry in self.entries():
            if excess <= 0:
                break
            if entry.readers == 0:
                chosen.append(entry)
                excess -= entry.footprint
        for entry in chosen:
            self.remove(entry.image_id)
        return chosen

    def held_bytes(self) -> int:
        """Bytes of the entries listed (without reservations and removed ones still read)."""
        return sum(entry.footprint for entry in self._entries.values())


def remove_file(path: Path) -> bool:
    """Remove ``path``; True if it was there (blocking)."""
    return _remove(path)


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _indexed(path: Path) -> Entry:
    fd = os.open(path, os.O_RDONLY)
    try:
        facts = read_trailer(fd)
        stat = os.fstat(fd)
    finally:
        os.close(fd)
    return Entry(
        image_id=path.name,
        facts=facts,
        path=path,
        last_accessed=stat.st_atime,
        last_modified=stat.st_mtime,
    )
