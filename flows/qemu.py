"""``qemu-img`` as a subprocess: never on the event loop, always with ``-f``, always limited.

Every call runs under ``prlimit`` (CPU seconds and address space) so that a hostile image that
slipped past the inspector still cannot make qemu-img run away with the host.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flows.errors import ConversionFailed, TerminalError

_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


@dataclass(frozen=True, slots=True)
class QemuImageInfo:
    """What ``qemu-img info`` says of an image."""

    format: str
    virtual_size: int
    actual_size: int | None
    #: A backing file or external data file qemu-img found (both refused).
    backing_file: str | None = None
    data_file: str | None = None


@dataclass(frozen=True, slots=True)
class QemuLimits:
    """Resource limits for one qemu-img process."""

    cpu_seconds: int
    address_space: int


def qemu_img_path() -> str:
    """The qemu-img executable, or a terminal error saying how to install it."""
    path = shutil.which("qemu-img")
    if path is None:
        raise TerminalError(
            "qemu-img is not installed; install it with: apt-get install qemu-utils"
        )
    return path


def _limited(limits: QemuLimits, *argv: str) -> list[str]:
    return [
        "prlimit",
        f"--cpu={limits.cpu_seconds}",
        f"--as={limits.address_space}",
        "--",
        qemu_img_path(),
        *argv,
    ]


async def qemu_info(path: Path, fmt: str, limits: QemuLimits) -> QemuImageInfo:
    """Run ``qemu-img info --output=json -f FMT PATH`` under ``limits``."""
    process = await asyncio.create_subprocess_exec(
        *_limited(limits, "info", "--output=json", "-f", fmt, str(path)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise ConversionFailed(f"qemu-img info of the {fmt} image failed: {_last_line(err)}")
    data = json.loads(out)
    return QemuImageInfo(
        format=str(data["format"]),
        virtual_size=int(data["virtual-size"]),
        actual_size=int(data["actual-size"]) if "actual-size" in data else None,
        backing_file=data.get("backing-filename") or data.get("full-backing-filename"),
        data_file=(data.get("format-specific", {}).get("data", {}) or {}).get("data-file"),
    )


async def qemu_convert(
    source: Path,
    source_format: str,
    target: Path,
    target_format: str,
    limits: QemuLimits,
    progress: Callable[[float], None] | None = None,
) -> None:
    """Convert ``source`` to ``target``; on failure or cancellation ``target`` is removed.

    The output is sparse: qemu-img does not write zero runs of a raw target.
    """
    process = await asyncio.create_subprocess_exec(
        *_limited(
            limits,
            "convert",
            "-p",
            "-f",
            source_format,
            "-O",
            target_format,
            str(source),
            str(target),
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        stderr_task = asyncio.create_task(process.stderr.read())
        await _follow_progress(process.stdout, progress)
        err = await stderr_task
        code = await process.wait()
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        target.unlink(missing_ok=True)
        raise
    if code != 0:
        target.unlink(missing_ok=True)
        cause = _last_line(err) or f"exit status {code}"
        if code < 0:
            cause = f"killed by signal {-code} (resource limit reached?)"
        raise ConversionFailed(
            f"qemu-img convert from {source_format} to {target_format} failed: {cause}"
        )


async def _follow_progress(
    stream: asyncio.StreamReader, progress: Callable[[float], None] | None
) -> None:
    buffer = b""
    while chunk := await stream.read(4096):
        buffer = (buffer + chunk)[-256:]
        if progress is not None:
            matches = _PROGRESS.findall(buffer)
            if matches:
                progress(float(matches[-1]))


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""
