"""Breaking and inspecting file stores in tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def immutable(directory: Path) -> Iterator[None]:
    """Make a directory unwritable even for root (chmod does not stop root; chattr +i does)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)
