"""A web-download started before its import exists, for a command that is still loading.

``imgworker import --uri`` spends its first second loading its modules (the database layer
above all) on one core while the other is idle. A :class:`Prefetch` downloads the URI in a
thread meanwhile — the same :func:`~flows.sources.web_download.download_blocking`, with every
check of the policy, before any connection — into a hidden file of the staging area. When
the flow's ``stage`` step runs it adopts the file (:meth:`Prefetch.adopt`): it waits for the
download to end, reports its progress, and moves the file to the image's staging path; or it
raises the download's error, exactly as the step's own download would have. Whoever started a
prefetch closes it (:meth:`Prefetch.close`): one that was never adopted — the request refused,
the flow failed before staging — is stopped and its file removed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from flows.config import FlowSettings
from flows.local_io import LocalPlace, failing_at
from flows.request import WEB_DOWNLOAD, ExpectedChecksum, ImportRequest
from flows.sources.web_download import Line, download_blocking
from flows.staging_space import check_staging_space
from flows.threads import check_stop, run_stoppable

#: The name every prefetch file starts with (hidden, beside the images being staged).
PREFIX = ".prefetch-"
#: A prefetch file untouched this long was left by a command that died (kill -9, power).
STALE_SECONDS = 3600.0


class Prefetch:
    """One URI being downloaded ahead of its import (see the module docstring)."""

    def __init__(self, uri: str, checksum: ExpectedChecksum | None, settings: FlowSettings) -> None:
        self.uri = uri
        self.checksum = checksum
        self.path = settings.staging_dir / f"{PREFIX}{uuid.uuid4().hex}"
        self._settings = settings
        self._line = Line()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._announced: list[int | None] = []
        self._received = 0
        self._listener: tuple[Callable[[int], None], Callable[[int | None], None]] | None = None
        self._adopted = False
        self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)

    def start(self) -> Prefetch:
        """Start downloading in a thread."""
        self._thread.start()
        return self

    def serves(self, request: ImportRequest) -> bool:
        """Whether this download is the one ``request`` asks for."""
        return (
            not self._adopted
            and request.method == WEB_DOWNLOAD
            and request.uri == self.uri
            and request.checksum == self.checksum
        )

    async def adopt(
        self,
        dest: Path,
        progress: Callable[[int], None],
        announced: Callable[[int | None], None],
    ) -> None:
        """Wait for the download and move its file to ``dest``, or raise its error.

        ``progress`` and ``announced`` get what :func:`~flows.sources.web_download.download`
        would have given them: what arrived so far at once, the rest as it arrives.
        Cancelling stops the download and removes its file.
        """
        self._adopted = True
        self._listen(progress, announced)
        await run_stoppable(lambda stop: self._take(dest, stop), interrupt=self._halt)

    def close(self) -> None:
        """Stop the download if it still runs and remove its file unless it was adopted."""
        self._halt()
        if self._thread.is_alive():
            self._thread.join()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _run(self) -> None:
        try:
            with failing_at(LocalPlace(self._settings.staging_dir), "take the download"):
                self._settings.staging_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_prefetches(self._settings.staging_dir)
            check_staging_space(self._settings)
            download_blocking(
                self.uri,
                self.path,
                self._settings.safety,
                self.checksum,
                self._count,
                self._announce,
                stop=self._stop,
                line=self._line,
            )
        except BaseException as error:  # kept for the stage step, which raises it
            self._error = error

    def _take(self, dest: Path, stop: threading.Event) -> None:
        # A cancellation cuts the download (the interrupt), so this join ends soon either way.
        self._thread.join()
        if self._error is not None:
            raise self._error
        check_stop(stop)  # cancelled as it ended: the file is not the import's
        with failing_at(LocalPlace(dest.parent), "take the download"):
            os.replace(self.path, dest)

    def _halt(self) -> None:
        self._stop.set()
        self._line.cut()

    def _listen(
        self, progress: Callable[[int], None], announced: Callable[[int | None], None]
    ) -> None:
        with self._lock:
            self._listener = (progress, announced)
            for size in self._announced:
                announced(size)
            if self._received:
                progress(self._received)

    def _count(self, nbytes: int) -> None:
        with self._lock:
            self._received += nbytes
            if self._listener is not None:
                self._listener[0](nbytes)

    def _announce(self, size: int | None) -> None:
        with self._lock:
            self._announced.append(size)
            if self._listener is not None:
                self._listener[1](size)


def remove_stale_prefetches(staging_dir: Path, older_than: float = STALE_SECONDS) -> None:
    """Remove prefetch files (and their partial downloads) nobody wrote to for a while."""
    cutoff = time.time() - older_than
    for pattern in (f"{PREFIX}*", f".{PREFIX}*"):
        for path in staging_dir.glob(pattern):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
