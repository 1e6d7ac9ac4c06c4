"""What an earlier attempt left in an RBD store, whose it is, and how it is freed.

A write marks its RBD image, right after creating it, with the import task and the librados
client that writes it (image metadata :data:`MARK_TASK` and :data:`MARK_WRITER`). A worker
killed mid-write leaves that image open: the dead client's watch on the image header lasts
Ceph's watch timeout (``osd_client_watch_timeout``, 30 s by default), and until then librbd
refuses to remove the image ("image is busy").

The task that takes the import over holds the image's import lock, and with it everything
imgworker wrote for that image that no location records: the leftover is its own when it
carries the mark (of this task, or of a task the lock was taken from), or when it holds
nothing at all (a writer that died between creating the image and marking it). Anything
else under the image's name was not written by imgworker, and is refused, never removed.

A watcher that is the marked writer is the dead attempt's client: it is blocklisted, as
librbd's own exclusive-lock break blocklists a dead lock owner, and its watch goes at once.
Any other watcher, or a Ceph user that may not blocklist, is waited out for up to the watch
timeout. No Ceph calls here: :mod:`flows.stores.rbd` does them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Image metadata: the task whose import wrote the image.
MARK_TASK = "imgworker.task"
#: Image metadata: the client that wrote it, ``<global id> <address>``.
MARK_WRITER = "imgworker.writer"
#: Seconds past the watch timeout before a watch that is still there counts as a live one.
WATCH_GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Client:
    """A librados client instance: its global id (unique in the cluster) and address."""

    global_id: int
    address: str

    def __str__(self) -> str:
        return f"client.{self.global_id} ({self.address})"

    @classmethod
    def parse(cls, text: str) -> Client | None:
        """The client of a :data:`MARK_WRITER` value; None when it is not one."""
        number, _, address = text.partition(" ")
        if not number.isdigit() or not address:
            return None
        return cls(int(number), address)

    def recorded(self) -> str:
        """The :data:`MARK_WRITER` value naming this client."""
        return f"{self.global_id} {self.address}"


@dataclass(frozen=True, slots=True)
class Mark:
    """Who wrote an RBD image: the import task and the writing client."""

    task_id: str
    writer: Client

    def metadata(self) -> dict[str, str]:
        """The image metadata that records this mark (no empty values: the rbd binding's
        ``metadata_list`` pairs keys and values up wrongly after one)."""
        recorded = {MARK_WRITER: self.writer.recorded()}
        if self.task_id:
            recorded[MARK_TASK] = self.task_id
        return recorded

    @classmethod
    def read(cls, metadata: Iterable[tuple[str, str]]) -> Mark | None:
        """The mark among an image's metadata pairs; None when the image carries none."""
        values = dict(metadata)
        writer = Client.parse(values.get(MARK_WRITER, ""))
        if writer is None:
            return None
        return cls(values.get(MARK_TASK, ""), writer)


@dataclass(frozen=True, slots=True)
class Leftover:
    """An RBD image found where a write is about to create one."""

    pool: str
    image_id: str
    mark: Mark | None
    snapshots: tuple[str, ...]
    #: Clients watching the image header (a writer, dead or alive; a mapping).
    watchers: tuple[Client, ...]
    #: Whether any extent holds data (only looked at for an unmarked image).
    holds_data: bool

    @property
    def name(self) -> str:
        """``pool/image``."""
        return f"{self.pool}/{self.image_id}"

    def owned(self) -> bool:
        """Whether the import holding the image's lock may remove it (see the module doc)."""
        return self.mark is not None or (not self.snapshots and not self.holds_data)

    def dead_writers(self) -> list[Client]:
        """The watchers that are the marked writer: the dead attempt's client."""
        if self.mark is None:
            return []
        return [w for w in self.watchers if w.global_id == self.mark.writer.global_id]

    def whose_task(self) -> str:
        """The task it was written for, for the log."""
        if self.mark is None or not self.mark.task_id:
            return "an unknown task"
        return f"task {self.mark.task_id}"

    def whose(self) -> str:
        """Who left it, for the log."""
        if self.mark is None:
            return "a writer that died before marking it (it holds nothing)"
        return f"{self.whose_task()}, written by {self.mark.writer}"

    def refusal(self) -> str:
        """Why it is not removed (when :meth:`owned` is false), and what to do."""
        return (
            f"rbd image {self.name} already exists and was not written by imgworker (it has "
            f"no {MARK_WRITER} metadata, and holds data or snapshots): it is left alone. "
            "If it is an orphan, remove it (rbd snap purge, rbd rm) and import again; "
            "if another service writes this pool, give imgworker a pool of its own"
        )


@dataclass(frozen=True, slots=True)
class WriterRelease:
    """How this client frees a dead writer, read from its Ceph configuration.

    The same options as librbd's exclusive-lock break: ``rbd_blocklist_on_break_lock``
    (blocklist the dead client, default true) and ``rbd_blocklist_expire_seconds`` (how long
    the entry lasts; 0: the monitors' default, one hour). ``osd_client_watch_timeout`` is how
    long a dead client's watch outlives it when it is not blocklisted.
    """

    blocklist: bool = True
    expire_seconds: int = 0
    watch_timeout: float = 30.0

    @classmethod
    def from_conf(cls, conf_get: Callable[[str], str | None]) -> WriterRelease:
        """Read the three options through ``conf_get`` (``rados.Rados.conf_get``)."""
        defaults = cls()
        blocklist = conf_get("rbd_blocklist_on_break_lock")
        expire = conf_get("rbd_blocklist_expire_seconds")
        timeout = conf_get("osd_client_watch_timeout")
        return cls(
            blocklist=defaults.blocklist if blocklist is None else _flag(blocklist),
            expire_seconds=int(expire) if expire else defaults.expire_seconds,
            watch_timeout=float(timeout) if timeout else defaults.watch_timeout,
        )

    def wait_limit(self) -> float:
        """Seconds to wait for a watch to go before counting it as a live client's."""
        return self.watch_timeout + WATCH_GRACE_SECONDS

    def describe(self) -> str:
        """One line on what a takeover does with a dead writer's watch."""
        if self.blocklist:
            return (
                "a dead writer is blocklisted at once (the Ceph user needs the "
                "'osd blocklist' mon cap, as in 'profile rbd'; without it, the takeover "
                f"waits up to the {self.watch_timeout:g} s watch timeout)"
            )
        return (
            "rbd_blocklist_on_break_lock is false: a takeover waits up to the "
            f"{self.watch_timeout:g} s watch timeout for a dead writer's watch"
        )


def _flag(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes", "on")
