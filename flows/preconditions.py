"""Which image statuses each import method may start from (Glance's rules, plus retries)."""

from __future__ import annotations

from flows.errors import ImageStateConflict
from flows.records import ImageRecord
from flows.request import COPY_IMAGE, GLANCE_DIRECT, WEB_DOWNLOAD, ImportRequest
from flows.states import ImageStatus

#: Statuses from which data may be staged for glance-direct (Glance: queued; imgworker also
#: lets a failed image be staged again).
STAGEABLE: tuple[str, ...] = (ImageStatus.QUEUED, ImageStatus.FAILED)

#: Statuses a new import request may start from. ``failed`` admits a new attempt after a
#: failed import (imgworker leaves a failed image ``failed``, where Glance resets it to
#: ``queued``).
_STARTABLE: dict[str, tuple[str, ...]] = {
    WEB_DOWNLOAD: (ImageStatus.QUEUED, ImageStatus.FAILED),
    GLANCE_DIRECT: (ImageStatus.UPLOADING, ImageStatus.FAILED),
    COPY_IMAGE: (ImageStatus.ACTIVE,),
}


def check_can_start(request: ImportRequest, image: ImageRecord, *, resuming: bool) -> None:
    """Raise :class:`ImageStateConflict` unless ``image`` may be imported by ``request``.

    ``resuming`` is true inside the worker, once it checked that its task holds the image's
    lock: a task redelivered after its worker died finds the image ``importing`` from its own
    earlier attempt, or already ``active`` if that attempt's first store succeeded (failure
    allowed) before it died. Either way the attempt starts over.
    """
    allowed = _STARTABLE[request.method]
    if resuming and request.method != COPY_IMAGE:
        allowed = (*allowed, ImageStatus.IMPORTING, ImageStatus.ACTIVE)
    if image.status not in allowed:
        raise ImageStateConflict(
            f"image {image.id} is {image.status}; {request.method} needs it to be "
            + " or ".join(allowed)
        )
    if not image.disk_format or not image.container_format:
        raise ImageStateConflict(
            f"image {image.id} needs disk_format and container_format set before an import"
        )
