"""The format inspector: what the staged bits really are, refused when unsafe.

Pure Python, reading only bounded pieces of the staged file, before qemu-img ever sees it
(and again on qemu-img's output). Every refusal is a :class:`flows.errors.SafetyRefusal`
whose ``check`` is a metric label: ``format_mismatch``, ``multiple_formats``,
``backing_file``, ``data_file``, ``vmdk_type``, ``vmdk_extent``, ``virtual_size`` and
``malformed``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flows.errors import SafetyRefusal
from flows.formats import disks, qcow2, vmdk
from flows.formats.base import Bits, Detected
from flows.policy import SafetyPolicy

#: Glance disk formats that are plain bytes to qemu-img.
RAW_LIKE = ("raw", "ami", "ari", "aki")
#: Partition tables are what a raw disk holds; they never conflict with raw or iso.
PARTITION_TABLES = ("gpt", "mbr")
#: qemu-img's name of each Glance disk format.
QEMU_FORMATS = {"vhd": "vpc", "iso": "raw", "ami": "raw", "ari": "raw", "aki": "raw"}


@dataclass(frozen=True, slots=True)
class Inspection:
    """What the inspector found: the (declared) format and the virtual size."""

    format: str
    virtual_size: int
    #: Every format whose signature was found (the declared one included).
    found: tuple[str, ...] = ()


def qemu_format(disk_format: str) -> str:
    """The ``-f``/``-O`` name qemu-img uses for a Glance ``disk_format``."""
    return QEMU_FORMATS.get(disk_format, disk_format)


def inspect_file(path: Path, declared_format: str, policy: SafetyPolicy) -> Inspection:
    """Inspect ``path`` declared as ``declared_format``; refuse anything unsafe (blocking)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _inspect(Bits(fd), declared_format, policy)
    finally:
        os.close(fd)


def _detectors(
    policy: SafetyPolicy,
) -> dict[str, tuple[Callable[[Bits], bool], Callable[[Bits], Detected]]]:
    return {
        "qcow2": (qcow2.matches, qcow2.inspect),
        "vmdk": (vmdk.matches, lambda bits: vmdk.inspect(bits, policy.vmdk_allowed_types)),
        "vhdx": (disks.vhdx_matches, disks.vhdx),
        "vhd": (disks.vhd_matches, disks.vhd),
        "vdi": (disks.vdi_matches, disks.vdi),
        "luks": (disks.luks_matches, disks.luks),
        "iso": (disks.iso_matches, disks.iso),
        "gpt": (disks.gpt_matches, lambda bits: Detected("gpt", bits.size)),
        "mbr": (disks.mbr_matches, lambda bits: Detected("mbr", bits.size)),
    }


def _inspect(bits: Bits, declared: str, policy: SafetyPolicy) -> Inspection:
    detectors = _detectors(policy)
    found = [name for name, (matches, _read) in detectors.items() if matches(bits)]
    images = [name for name in found if name not in PARTITION_TABLES]
    if declared in RAW_LIKE:
        if images:
            raise SafetyRefusal(
                "format_mismatch",
                f"the image is declared {declared} but the data is {_a(images[0])} image; "
                f"set disk_format={images[0]} (formats are never guessed)",
            )
        detected = Detected("raw", bits.size)
    elif declared not in detectors:
        raise SafetyRefusal(
            "format_mismatch", f"disk_format {declared!r} cannot be inspected and is refused"
        )
    else:
        if declared not in found:
            what = f"{_a(images[0])} image" if images else "not a recognised image format"
            raise SafetyRefusal(
                "format_mismatch",
                f"the image is declared {declared} but the data is {what}",
            )
        others = [name for name in images if name != declared]
        if others:
            raise SafetyRefusal(
                "multiple_formats",
                f"the image is {declared} and also carries {_a(others[0])} header; images "
                "that are two formats at once are refused",
            )
        detected = detectors[declared][1](bits)
    if detected.virtual_size > policy.virtual_size_cap:
        raise SafetyRefusal(
            "virtual_size",
            f"the image's virtual size {detected.virtual_size} bytes is above the cap of "
            f"{policy.virtual_size_cap} bytes",
        )
    return Inspection(declared, detected.virtual_size, tuple(found))


def _a(name: str) -> str:
    return f"a {name}" if name[0] not in "aeiou" else f"an {name}"
