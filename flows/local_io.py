"""Local file-system failures as reasons: which place, what is wrong with it, what to do.

The staging area and the file stores are directories of this host. When the kernel refuses
an operation there — the disk is full or over quota, mounted read-only, not the worker's to
write — the user is told the place, the problem and the fix as a typed error, never a
traceback: :class:`~flows.errors.StagingError` for the staging area,
:class:`~flows.errors.StoreFailed` for a file store (or
:class:`~flows.errors.StoreUnavailable` when the network file system under it stopped
answering). :func:`local_failure` is the one place that words them; :func:`failing_at`
applies it around a block of file operations.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flows.errors import StagingError, StoreError, StoreFailed, StoreUnavailable


@dataclass(frozen=True, slots=True)
class LocalPlace:
    """A directory imgworker keeps data in: the staging area, or one file store."""

    path: Path
    #: The file store's name; None for the staging area.
    store: str | None = None

    @property
    def setting(self) -> str:
        """The configuration key that says where this place is."""
        return "[staging] dir" if self.store is None else f"[stores.{self.store}] path"


#: What each error number says about the place, and what the operator can do about it.
_PROBLEMS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("is full", "free space there, or point {setting} at a larger file system"),
    errno.EDQUOT: (
        "is over the disk quota of the worker's user",
        "free space there or raise the quota",
    ),
    errno.EFBIG: (
        "is on a file system that cannot hold a file this large",
        "point {setting} at a file system without that limit",
    ),
    errno.EROFS: (
        "is on a read-only file system",
        "remount it read-write, or point {setting} at a writable directory",
    ),
    errno.EACCES: (
        "is not accessible to the worker's user (uid {uid})",
        "give that user read and write access to it",
    ),
    errno.EPERM: (
        "refuses the operation (an immutable or append-only file, or a mount option)",
        "lift the restriction, or point {setting} at a directory the worker may change",
    ),
    errno.EIO: ("had an input/output error", "check the disk and the kernel's log"),
}

#: Error numbers of a network file system that stopped answering: worth retrying later.
_OUTAGES = frozenset(
    {
        errno.ETIMEDOUT,
        errno.ESTALE,
        errno.ENOTCONN,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
    }
)


def reason(place: LocalPlace, error: OSError) -> str:
    """Why ``error`` happened at ``place`` and what to do, in one clause.

    ``/srv/staging is full (No space left on device); free space there, or point [staging]
    dir at a larger file system``.
    """
    number = error.errno
    told = error.strerror or str(error) or type(error).__name__
    if number in _OUTAGES:
        return f"{place.path} did not answer ({told}); it is tried again later"
    if number not in _PROBLEMS:
        return f"{error.filename or place.path}: {told}"
    problem, fix = _PROBLEMS[number]
    problem = problem.format(uid=os.geteuid())
    return f"{place.path} {problem} ({told}); {fix.format(setting=place.setting)}"


def local_failure(place: LocalPlace, action: str, error: OSError) -> StagingError | StoreError:
    """The typed error for ``error``, met while trying to ``action`` at ``place``.

    ``action`` completes "cannot ...": ``take the upload``, ``write the image``. A file
    store's outage (a network file system not answering) is transient; anything else is
    terminal.
    """
    if place.store is None:
        return StagingError(f"the staging area cannot {action}: {reason(place, error)}")
    detail = f"cannot {action}: {reason(place, error)}"
    if error.errno in _OUTAGES:
        return StoreUnavailable(place.store, detail)
    return StoreFailed(place.store, detail)


@contextmanager
def failing_at(place: LocalPlace, action: str) -> Iterator[None]:
    """Turn an :class:`OSError` raised inside into :func:`local_failure`'s typed error."""
    try:
        yield
    except OSError as exc:
        raise local_failure(place, action, exc) from exc
