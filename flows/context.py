"""What the steps of one import share: collaborators in, facts learned along the way."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from flows.config import FlowSettings
from flows.errors import LockLost, NotFound
from flows.events import Announcement, EventType, NullEvents, UploadFailure
from flows.fanout import FanOut
from flows.lease import Lease
from flows.observer import FlowObserver, NullObserver, Tee
from flows.ports import ImageEvents, ImageRepository, TaskRepository
from flows.progress import Progress
from flows.records import DataFacts, Hold, ImageFormats, ImageRecord
from flows.request import COPY_IMAGE, ImportRequest
from flows.requester import RequestContext
from flows.sources.prefetch import Prefetch
from flows.stores.base import Store


@dataclass
class ImportContext:
    """The one typed object every step reads and writes."""

    task_id: str
    image_id: str
    worker_id: str
    request: ImportRequest
    images: ImageRepository
    tasks: TaskRepository
    #: Every configured store by name (targets are resolved from these).
    stores: dict[str, Store]
    #: The store used when the request names none.
    default_store: str
    settings: FlowSettings
    observer: FlowObserver = field(default_factory=NullObserver)
    #: Where the flow's notifications are recorded (Glance's events, at Glance's moments).
    events: ImageEvents = field(default_factory=NullEvents)
    #: Who asked for the import (the message's ``context``).
    requester: RequestContext = field(default_factory=RequestContext)

    #: What the import is doing now (the task's progress message).
    progress: Progress = field(default_factory=Progress)
    #: The task's hold on the image, held by the runner around the whole flow.
    lease: Lease | None = None
    #: The image's formats when the import was requested (kept in the task's input). A
    #: resumed task puts them back first: a dead attempt may have recorded its conversion's.
    requested_formats: ImageFormats | None = None
    #: The request's web-download, started before the import existed (``imgworker import``).
    prefetch: Prefetch | None = None

    # -- learned while running ------------------------------------------------------------
    #: The image as the lock step found it (set once it checked this task may import it).
    image: ImageRecord | None = None
    #: Target stores, in the order they are written.
    targets: list[str] = field(default_factory=list)
    #: The staged original bits (``<staging>/<image_id>``).
    staged_path: Path | None = None
    #: The format detected in the staged bits.
    source_format: str | None = None
    #: The file the stores are written from (the conversion's output, or the staged file).
    data_path: Path | None = None
    #: Stores the conversion wrote into directly: their hidden file, which their step
    #: publishes (and which is removed if it never is).
    prewritten: dict[str, Path] = field(default_factory=dict)
    #: The format the conversion produced and recorded (None: nothing was converted).
    converted_to: str | None = None
    #: Virtual size reported for the data to store.
    virtual_size: int | None = None
    #: Hashes of the data to store, computed once in the background.
    data_facts: asyncio.Task[DataFacts] | None = None
    #: Locations written by this flow, by store name.
    written: dict[str, str] = field(default_factory=dict)
    #: Stores whose write failed, with the reason.
    failed: dict[str, str] = field(default_factory=dict)
    #: Whether this flow already set the image active.
    activated: bool = False
    #: Held while the image is being activated (stores written at once may race to it).
    activation_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The one read of the data shared by the stores being written at once, while they are.
    fanout: FanOut | None = None

    def __post_init__(self) -> None:
        # The progress counts what the observer is told, whoever the observer is.
        self.observer = Tee(self.observer, self.progress)

    @property
    def hold(self) -> Hold:
        """This task's hold on its image (the lock and the worker's claim)."""
        return Hold(self.image_id, self.task_id, self.worker_id)

    async def assert_holds(self) -> None:
        """Raise :class:`flows.errors.LockLost` unless this task still holds its image."""
        if self.lease is not None:
            await self.lease.check()

    async def taken_over(self) -> bool:
        """Whether another task or worker took this task's image over: what this task wrote
        is then the holder's to clear. (An image deleted meanwhile was not taken over.)"""
        try:
            await self.assert_holds()
        except LockLost:
            return True
        except NotFound:
            return False
        return False

    async def announce(
        self,
        event: EventType,
        moment: str,
        *,
        store: str | None = None,
        failure: UploadFailure | None = None,
    ) -> None:
        """Announce ``event`` at ``moment`` of this import (once per task, see Announcement)."""
        await self.events.announce(
            self.task_id, self.image_id, Announcement(event, moment, store, failure)
        )

    def staging_file(self, suffix: str = "") -> Path:
        """``<staging>/<image_id><suffix>``: where this image's bits wait."""
        return self.settings.staging_dir / f"{self.image_id}{suffix}"

    @property
    def is_copy(self) -> bool:
        """True for copy-image, which never changes the image's status."""
        return self.request.method == COPY_IMAGE
