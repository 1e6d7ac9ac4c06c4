"""VMDK: the sparse header and its embedded descriptor, or a bare descriptor file."""

from __future__ import annotations

import re

from flows.errors import SafetyRefusal
from flows.formats.base import Bits, Detected, malformed

SPARSE_MAGIC = b"KDMV"
DESCRIPTOR_MARK = b"# Disk DescriptorFile"
#: Descriptors bigger than this are refused rather than read.
MAX_DESCRIPTOR = 64 * 1024
CREATE_TYPE = re.compile(r'^\s*createType\s*=\s*"([^"]*)"', re.MULTILINE)
EXTENT = re.compile(r'^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)")?', re.MULTILINE)


def matches(bits: Bits) -> bool:
    """A sparse VMDK header, or a text descriptor."""
    head = bits.read(0, 64)
    return head.startswith(SPARSE_MAGIC) or head.lstrip().startswith(DESCRIPTOR_MARK)


def inspect(bits: Bits, allowed_types: tuple[str, ...]) -> Detected:
    """Check the create type and that every extent lives inside this file."""
    fmt = "vmdk"
    if bits.read(0, 4) == SPARSE_MAGIC:
        (capacity,) = bits.unpack("<Q", 12, fmt, "the sparse header")
        desc_offset, desc_size = bits.unpack("<QQ", 28, fmt, "the sparse header")
        if desc_size * 512 > MAX_DESCRIPTOR:
            raise malformed(fmt, f"the embedded descriptor ({desc_size * 512} bytes) is too big")
        text = bits.read(desc_offset * 512, desc_size * 512) if desc_offset else b""
        embedded = True
    else:
        text = bits.read(0, MAX_DESCRIPTOR + 1)
        if len(text) > MAX_DESCRIPTOR:
            raise malformed(fmt, "the descriptor file is larger than 64 KiB")
        capacity = 0
        embedded = False
    descriptor = text.split(b"\0", 1)[0].decode("utf-8", "replace")
    found = CREATE_TYPE.search(descriptor)
    if found is None:
        raise malformed(fmt, "the descriptor names no createType")
    create_type = found.group(1)
    if create_type not in allowed_types:
        raise SafetyRefusal(
            "vmdk_type",
            f"VMDK create type {create_type!r} is not allowed (allowed: "
            f"{', '.join(allowed_types)})",
        )
    extents = EXTENT.findall(descriptor)
    for _access, _sectors, kind, name in extents:
        if not embedded or kind.upper() not in ("SPARSE",) or "/" in name or "\\" in name:
            raise SafetyRefusal(
                "vmdk_extent",
                f"VMDK extent {kind} {name!r} is not inside the image file itself; "
                "images that reference other files are refused",
            )
    if len(extents) > 1:
        raise SafetyRefusal(
            "vmdk_extent", f"VMDK has {len(extents)} extents; only one, inside the file, is allowed"
        )
    if not embedded:
        capacity = sum(int(sectors) for _a, sectors, _k, _n in extents)
    return Detected(fmt, capacity * 512, {"create_type": create_type})
