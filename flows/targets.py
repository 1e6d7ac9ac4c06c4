"""Which stores an import writes to, resolved the way Glance resolves them."""

from __future__ import annotations

from collections.abc import Collection

from flows.errors import ImageStateConflict, UnknownStore
from flows.records import ImageRecord
from flows.request import COPY_IMAGE, ImportRequest


def resolve_targets(
    request: ImportRequest, image: ImageRecord, configured: Collection[str], default: str
) -> list[str]:
    """The target stores of ``request`` in write order.

    No stores named: the default store. ``all_stores``: every configured store (for
    copy-image, those that do not have the image yet). copy-image with explicit stores that
    already hold the image is refused, as in Glance; with ``all_stores`` they are skipped and
    an empty result means there is nothing to do.
    """
    unknown = [name for name in request.stores if name not in configured]
    if unknown:
        raise UnknownStore(
            f"unknown store(s) {', '.join(unknown)}; configured stores: "
            + ", ".join(sorted(configured))
        )
    if request.all_stores:
        targets = list(configured)
    elif request.stores:
        targets = list(request.stores)
    else:
        targets = [default]
    if request.method != COPY_IMAGE:
        return targets
    present = set(image.stores)
    if request.all_stores:
        return [name for name in targets if name not in present]
    already = [name for name in targets if name in present]
    if already:
        raise ImageStateConflict(
            f"image {image.id} is already present at store(s) {', '.join(already)}; "
            "copy it only to stores that do not have it"
        )
    return targets
