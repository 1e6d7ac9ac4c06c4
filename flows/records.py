"""What the pipeline knows of the image and task records (plain snapshots, no ORM)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flows.states import LocationStatus

IMPORTING_TO_STORES = "os_glance_importing_to_stores"
FAILED_IMPORT = "os_glance_failed_import"
IMPORT_LOCK = "os_glance_import_task"
#: The key of an import task's result that maps each store whose write failed to why.
STORE_FAILURES = "store_failures"

#: Hash algorithm recorded in ``os_hash_algo`` (Glance's default).
OS_HASH_ALGO = "sha512"


@dataclass(frozen=True, slots=True)
class Location:
    """One place the image's data lives: ``url`` in store ``store``."""

    url: str
    store: str
    status: str = LocationStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """A snapshot of one row of ``images`` with its properties and locations."""

    id: str
    name: str | None
    status: str
    disk_format: str | None
    container_format: str | None
    owner: str | None = None
    size: int | None = None
    virtual_size: int | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    locations: tuple[Location, ...] = ()
    visibility: str = "shared"
    protected: bool = False
    os_hidden: bool = False
    min_disk: int = 0
    min_ram: int = 0
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def stores(self) -> list[str]:
        """The stores holding an active location, in location order (Glance's ``stores``)."""
        seen: list[str] = []
        for location in self.locations:
            if location.status == LocationStatus.ACTIVE and location.store not in seen:
                seen.append(location.store)
        return seen

    def store_list(self, prop: str) -> list[str]:
        """A comma-separated store-list property as a list (empty when unset)."""
        return split_store_list(self.properties.get(prop, ""))


@dataclass(frozen=True, slots=True)
class ImageFormats:
    """An image's ``disk_format`` and ``container_format``: what its bits are."""

    disk_format: str | None
    container_format: str | None

    @classmethod
    def of(cls, image: ImageRecord) -> ImageFormats:
        """The formats ``image`` records."""
        return cls(image.disk_format, image.container_format)

    def to_dict(self) -> dict[str, str | None]:
        """The form kept in a task's input."""
        return {"disk_format": self.disk_format, "container_format": self.container_format}

    @classmethod
    def from_dict(cls, data: object) -> ImageFormats | None:
        """Read :meth:`to_dict`'s form back; None when ``data`` is not one."""
        if not isinstance(data, dict):
            return None
        disk, container = data.get("disk_format"), data.get("container_format")
        if not isinstance(disk, str) or not isinstance(container, str):
            return None
        return cls(disk, container)


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A snapshot of one row of ``tasks`` with its ``task_info``."""

    id: str
    type: str
    status: str
    image_id: str | None
    owner: str | None = None
    request_id: str | None = None
    user_id: str | None = None
    claimed_by: str | None = None
    input: dict[str, object] | None = None
    result: dict[str, object] | None = None
    message: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    """A task's hold on its image: the image's import lock and the worker's claim on the task.

    Every write of a flow is made only while both are the task's (the repositories check it
    in the same transaction as the write).
    """

    image_id: str
    task_id: str
    worker_id: str


@dataclass(frozen=True, slots=True)
class DataFacts:
    """What the import learned about the stored data (after conversion): each field is the
    ``images`` column of that name."""

    size: int
    virtual_size: int
    checksum: str
    os_hash_value: str
    os_hash_algo: str = OS_HASH_ALGO


def split_store_list(value: str) -> list[str]:
    """Parse a comma-separated store list, ignoring blanks."""
    return [item.strip() for item in value.split(",") if item.strip()]


def join_store_list(stores: list[str]) -> str:
    """Format a store list the way Glance writes it."""
    return ",".join(stores)
