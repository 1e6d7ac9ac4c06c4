"""The pipeline's error hierarchy.

Every failure a flow can meet is one of two kinds: *transient* (the same task may succeed if it
is retried later: a broker, database or network hiccup) or *terminal* (retrying cannot help: a
hostile image, a checksum mismatch, a 4xx from the source). A safety refusal is a terminal
error that also names the check that refused. Messages are written for the user: they name the
thing, the problem and, when there is one, the fix.
"""

from __future__ import annotations


class ImportFailed(Exception):
    """Base of every error a flow raises on purpose."""

    #: Whether a later retry of the same task may succeed.
    transient: bool = False
    #: A short, low-cardinality label for metrics (never an id).
    reason: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class TransientError(ImportFailed):
    """A failure that a retry later may cure (network, database, broker, store unreachable)."""

    transient = True
    reason = "transient"


class TerminalError(ImportFailed):
    """A failure that no retry can cure (bad input, hostile image, refused request)."""

    reason = "terminal"


class InvalidRequest(TerminalError):
    """The import request itself is wrong: unknown method or store, bad combination of fields."""

    reason = "invalid_request"


class UnknownMethod(InvalidRequest):
    """The request names no import method, or one this deployment does not offer."""

    reason = "bad_method"


class UnknownStore(InvalidRequest):
    """The request names a store that is not configured."""

    reason = "unknown_store"


class NotFound(TerminalError):
    """A record the request names does not exist (an image, a task, a location)."""

    reason = "not_found"


class ImageStateConflict(TerminalError):
    """The image is not in a state that allows this import (e.g. copy-image of a queued image)."""

    reason = "conflict"


class LockLost(TerminalError):
    """The task no longer holds the image's import lock: another task took it over."""

    reason = "lock_lost"


class SourceError(TerminalError):
    """The source refused or returned something unusable (4xx, wrong checksum, too large)."""

    reason = "source"


class SourceUnavailable(TransientError):
    """The source could not be reached right now (connection refused, 5xx, timeout)."""

    reason = "source_unavailable"


class ConversionFailed(TerminalError):
    """qemu-img could not convert the image."""

    reason = "conversion"


class StagingError(TerminalError):
    """The staging area cannot take the image (no free space, not writable)."""

    reason = "staging"


class StoreWriteFailed(ImportFailed):
    """Writing the image into one store failed; ``store`` names it."""

    reason = "store"

    def __init__(self, store: str, detail: str, *, transient: bool = False) -> None:
        super().__init__(f"store {store!r}: {detail}")
        self.store = store
        self.detail = detail
        self.transient = transient


class DataInUse(TransientError):
    """A store will not remove data something still uses (an RBD image with clones)."""

    reason = "in_use"

    def __init__(self, store: str, detail: str) -> None:
        super().__init__(f"store {store!r}: {detail}")
        self.store = store


class NoStoreSucceeded(TerminalError):
    """Failure was allowed, but not a single target store could be written."""

    reason = "no_store"


class SafetyRefusal(TerminalError):
    """A safety check refused the image; ``check`` names the check (a metric label)."""

    reason = "safety"

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check
