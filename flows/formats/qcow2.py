"""qcow2 (versions 2 and 3): size, backing file, external data file, truncation."""

from __future__ import annotations

from flows.errors import SafetyRefusal
from flows.formats.base import Bits, Detected, malformed

MAGIC = b"QFI\xfb"
#: Incompatible feature bit 2: the guest data lives in an external file.
EXTERNAL_DATA_FILE = 1 << 2
#: Header extension naming the external data file.
EXTENSION_DATA_FILE = 0x44415441


def matches(bits: Bits) -> bool:
    """The qcow2 magic at offset 0."""
    return bits.read(0, 4) == MAGIC


def inspect(bits: Bits) -> Detected:
    """Read the header; refuse backing files, external data files and cut-off tables."""
    fmt = "qcow2"
    (version,) = bits.unpack(">I", 4, fmt, "the header")
    if version not in (2, 3):
        raise malformed(fmt, f"unknown version {version}")
    backing_offset, backing_size, cluster_bits, size = bits.unpack(">QIIQ", 8, fmt, "the header")
    l1_size, l1_offset, refcount_offset, refcount_clusters = bits.unpack(
        ">IQQI", 36, fmt, "the header"
    )
    if not 9 <= cluster_bits <= 21:
        raise malformed(fmt, f"cluster size 2^{cluster_bits} is out of range")
    if backing_offset:
        name = bits.read(backing_offset, min(backing_size, 1023)).decode("utf-8", "replace")
        raise SafetyRefusal(
            "backing_file",
            f"qcow2 image has a backing file ({name!r}); images with backing files are refused",
        )
    header_length = 72
    if version == 3:
        (incompatible,) = bits.unpack(">Q", 72, fmt, "the v3 header")
        (header_length,) = bits.unpack(">I", 100, fmt, "the v3 header")
        if incompatible & EXTERNAL_DATA_FILE:
            raise SafetyRefusal(
                "data_file",
                "qcow2 image keeps its data in an external data file; such images are refused",
            )
    _check_extensions(bits, header_length)
    cluster = 1 << cluster_bits
    for what, offset, length in (
        ("the L1 table", l1_offset, l1_size * 8),
        ("the refcount table", refcount_offset, refcount_clusters * cluster),
    ):
        if length and offset + length > bits.size:
            raise malformed(
                fmt,
                f"{what} ends at byte {offset + length}, past the end of the file"
                f" ({bits.size} bytes): the image is truncated",
            )
    return Detected(fmt, size, {"version": str(version)})


def _check_extensions(bits: Bits, offset: int) -> None:
    """Walk the header extensions (bounded); a data-file name is refused like the flag."""
    for _ in range(64):
        header = bits.read(offset, 8)
        if len(header) < 8:
            return
        kind = int.from_bytes(header[:4], "big")
        length = int.from_bytes(header[4:], "big")
        if kind == 0:
            return
        if kind == EXTENSION_DATA_FILE:
            name = bits.read(offset + 8, min(length, 1023)).decode("utf-8", "replace")
            raise SafetyRefusal(
                "data_file",
                f"qcow2 image names an external data file ({name!r}); such images are refused",
            )
        offset += 8 + (length + 7) // 8 * 8
