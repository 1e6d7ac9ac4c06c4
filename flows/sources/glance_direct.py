"""glance-direct: the bits were uploaded to the shared staging area beforehand."""

from __future__ import annotations

from pathlib import Path

from flows.errors import SourceError


def staged_upload(path: Path, image_id: str) -> int:
    """Check the uploaded bits are at ``path``; return their size (blocking, cheap)."""
    if not path.is_file():
        raise SourceError(
            f"image {image_id} has no staged data at {path}; "
            "stage it first (imgworker image-stage IMAGE_ID --file PATH)"
        )
    size = path.stat().st_size
    if size == 0:
        raise SourceError(f"the staged data of image {image_id} at {path} is empty")
    return size
