"""Every error a flow, the records or the stores raise on purpose: one hierarchy, one meaning.

Every failure is one of two kinds, and the kind is the type: a :class:`TransientError` (the
same task may succeed if it is retried later: a database, store, source or key manager that
does not answer now) or a :class:`TerminalError` (retrying cannot help: a hostile image, a
checksum mismatch, a 4xx from the source, a full staging area). Whoever must decide — the
worker retrying or recording a failure, the API choosing 503 or 4xx, the CLI's exit line —
decides by these types, never by a flag or a message's text. A safety refusal is a terminal
error that also names the check that refused. Messages are written for the user: they name
the thing, the problem and, when there is one, the fix.
"""

from __future__ import annotations


class ImportFailed(Exception):
    """Base of every error a flow, the records or the stores raise on purpose."""

    #: A short, low-cardinality label for metrics (never an id).
    reason: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def transient(self) -> bool:
        """Whether a later retry of the same task may succeed: exactly the TransientErrors."""
        return isinstance(self, TransientError)


class TransientError(ImportFailed):
    """A failure that a retry later may cure (network, database, broker, store unreachable)."""

    reason = "transient"


class TerminalError(ImportFailed):
    """A failure that no retry can cure (bad input, hostile image, refused request)."""

    reason = "terminal"


# -- the request and the records ---------------------------------------------------------


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


class ProtectedImage(ImageStateConflict):
    """The image is protected: it cannot be deleted (Glance answers 403)."""

    reason = "protected"


class LastLocation(ImageStateConflict):
    """The store holds the image's only copy (Glance answers 403)."""

    reason = "last_location"


class OverLimit(TerminalError):
    """A limit on what a project or an image may hold refused the request (Glance answers 413):
    a Keystone unified limit, or a per-image limit (properties, tags, locations, members)."""

    reason = "over_limit"


class LockLost(TerminalError):
    """The task no longer holds the image's import lock: another task took it over."""

    reason = "lock_lost"


class RecordsUnavailable(TransientError):
    """The database did not answer (connection lost, refused, or timed out): retry later.

    Nothing is known to have been recorded by the transaction that met it. Never a reason to
    fail an import: the task is put back (or, if that cannot be recorded either, its message
    is delivered again).
    """

    reason = "records_unavailable"

    def __init__(self, cause: str) -> None:
        super().__init__(f"the image records are unreachable right now ({cause})")
        self.cause = cause


# -- sources, inspection, conversion ---------------------------------------------------


class SourceError(TerminalError):
    """The source refused or returned something unusable (4xx, wrong checksum, too large)."""

    reason = "source"


class SourceUnavailable(TransientError):
    """The source could not be reached right now (connection refused, 5xx, timeout)."""

    reason = "source_unavailable"


class KeyManagerUnavailable(TransientError):
    """The key manager could not be reached or failed (5xx); a later retry may work."""

    reason = "key_manager_unavailable"


class KeyManagerRefused(TerminalError):
    """The key manager refused the worker's credentials or request; the operator must act."""

    reason = "key_manager_refused"


class ConversionFailed(TerminalError):
    """qemu-img could not convert the image."""

    reason = "conversion"


class StagingError(TerminalError):
    """The staging area cannot take the image (full, read-only, not writable by the worker).

    The HTTP API answers 507 for it. :func:`flows.local_io.local_failure` words the local
    file-system failures.
    """

    reason = "staging"


class SafetyRefusal(TerminalError):
    """A safety check refused the image; ``check`` names the check (a metric label)."""

    reason = "safety"

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


# -- the stores --------------------------------------------------------------------------


class StoreError(ImportFailed):
    """A store could not do what was asked (write, read or delete); ``store`` names it.

    Always one of :class:`StoreFailed` (terminal) or :class:`StoreUnavailable` (transient);
    a store step catches this base to record the store failed whichever it is.
    """

    reason = "store"

    def __init__(self, store: str, detail: str) -> None:
        super().__init__(f"store {store!r}: {detail}")
        self.store = store
        self.detail = detail


class StoreFailed(StoreError, TerminalError):
    """The store answered and could not do it (no space, permission, an I/O error)."""

    reason = "store"


class StoreUnavailable(StoreError, TransientError):
    """The store did not answer in time (a Ceph cluster down or partitioned): retry later."""

    reason = "store_unavailable"


class DataInUse(StoreError, TransientError):
    """A store will not remove data something still uses (an RBD image with clones)."""

    reason = "in_use"


class NoStoreSucceeded(TerminalError):
    """Failure was allowed, but not a single target store could be written."""

    reason = "no_store"
