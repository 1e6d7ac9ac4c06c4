"""What the metadef catalogue hands out, and the refusals it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Namespace:
    """One namespace (without its contents)."""

    namespace: str
    owner: str
    visibility: str = "private"
    protected: bool = False
    display_name: str | None = None
    description: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """An object, a property or a tag: its name and its definition (the rest of its JSON)."""

    name: str
    definition: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Association:
    """A namespace's resource type association (or, without prefix and target, a type)."""

    name: str
    prefix: str | None = None
    properties_target: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Contents:
    """What a new namespace may come with (``POST /v2/metadefs/namespaces``, a file)."""

    objects: tuple[Item, ...] = ()
    properties: tuple[Item, ...] = ()
    tags: tuple[Item, ...] = ()
    associations: tuple[Association, ...] = ()

    def count(self) -> int:
        """How many records they are."""
        return len(self.objects) + len(self.properties) + len(self.tags) + len(self.associations)


class MetadefError(Exception):
    """A metadef request the catalogue refuses."""


class MetadefMissing(MetadefError):
    """No such namespace (or none the caller may see), object, property, tag or type."""


class MetadefDuplicate(MetadefError):
    """The name is taken."""


class MetadefProtected(MetadefError):
    """A protected namespace, or its contents, cannot be deleted."""


class MetadefLimitReached(MetadefError):
    """The project owns as many metadef records as ``[metadefs] project_limit`` allows."""
