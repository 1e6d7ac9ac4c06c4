"""A corpus of hostile and legitimate images, generated with qemu-img and by writing headers.

Each hostile case names the disk_format it claims and the check that must refuse it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.images import MiB, qemu_img

PiB = 1024**5


@dataclass(frozen=True)
class Case:
    """One corpus entry: how to make it, what it claims to be, what must refuse it."""

    name: str
    declared: str
    check: str
    words: str
    make: Callable[[Path], Path]


def _qcow2(directory: Path, name: str = "plain.qcow2", size: str = "4M") -> Path:
    path = directory / name
    qemu_img("create", "-q", "-f", "qcow2", str(path), size)
    return path


def qcow2_with_backing_file(directory: Path) -> Path:
    base = directory / "base.raw"
    base.write_bytes(bytes(MiB))
    path = directory / "backed.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(path))
    return path


def qcow2_with_data_file(directory: Path) -> Path:
    path = directory / "datafile.qcow2"
    qemu_img(
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        f"data_file={directory / 'outside.data'}",
        str(path),
        "4M",
    )
    return path


def vmdk_monolithic_flat(directory: Path) -> Path:
    path = directory / "flat.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(path), "4M")
    return path


def vmdk_absolute_extent(directory: Path) -> Path:
    """A descriptor whose create type is allowed but whose extent is a host file."""
    path = directory / "extent.vmdk"
    path.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        'createType="monolithicSparse"\n\n# Extent description\n'
        'RW 8 FLAT "/etc/passwd" 0\n'
    )
    return path


def qcow2_inside_iso(directory: Path) -> Path:
    """A qcow2 header at 0 and an ISO 9660 volume descriptor at 32 KiB."""
    path = _qcow2(directory, "hidden.qcow2")
    data = bytearray(path.read_bytes().ljust(64 * 1024, b"\0"))
    data[0x8001:0x8006] = b"CD001"
    out = directory / "hidden.iso"
    out.write_bytes(bytes(data))
    return out


def qcow2_truncated(directory: Path) -> Path:
    path = _qcow2(directory, "cut.qcow2", "64M")
    qemu_img("resize", "-q", str(path), "64M")
    data = path.read_bytes()
    out = directory / "truncated.qcow2"
    out.write_bytes(data[: 0x10000 + 512])  # header and refcount table start; L1 gone
    return out


def qcow2_one_pib(directory: Path) -> Path:
    """A small qcow2 whose header claims 1 PiB (written, not allocated)."""
    path = _qcow2(directory, "huge.qcow2")
    data = bytearray(path.read_bytes())
    data[24:32] = struct.pack(">Q", PiB)
    path.write_bytes(bytes(data))
    return path


def qcow2_header_only(directory: Path) -> Path:
    out = directory / "stub.qcow2"
    out.write_bytes(_qcow2(directory).read_bytes()[:40])
    return out


def raw_file(directory: Path) -> Path:
    path = directory / "disk.raw"
    path.write_bytes(b"\x01" * MiB)
    return path


def vmdk_sparse(directory: Path) -> Path:
    path = directory / "sparse.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", str(path), "4M")
    return path


HOSTILE: list[Case] = [
    Case("qcow2-backing-file", "qcow2", "backing_file", "backing file", qcow2_with_backing_file),
    Case("qcow2-data-file", "qcow2", "data_file", "external data file", qcow2_with_data_file),
    Case(
        "vmdk-monolithic-flat",
        "vmdk",
        "vmdk_type",
        "'monolithicFlat' is not allowed",
        vmdk_monolithic_flat,
    ),
    Case("vmdk-absolute-extent", "vmdk", "vmdk_extent", "/etc/passwd", vmdk_absolute_extent),
    Case("qcow2-inside-iso", "iso", "multiple_formats", "also carries a qcow2", qcow2_inside_iso),
    Case(
        "qcow2-declared-raw",
        "raw",
        "format_mismatch",
        "declared raw but the data is a qcow2",
        lambda d: _qcow2(d),
    ),
    Case(
        "raw-declared-qcow2", "qcow2", "format_mismatch", "not a recognised image format", raw_file
    ),
    Case("vmdk-declared-qcow2", "qcow2", "format_mismatch", "the data is a vmdk", vmdk_sparse),
    Case("qcow2-truncated", "qcow2", "malformed", "truncated", qcow2_truncated),
    Case("qcow2-header-cut", "qcow2", "malformed", "cut off", qcow2_header_only),
    Case("qcow2-1-pib", "qcow2", "virtual_size", "above the cap", qcow2_one_pib),
]


def legitimate(directory: Path) -> dict[str, Path]:
    """One image of each format the inspector accepts, keyed by Glance disk_format."""
    made: dict[str, Path] = {}
    for disk_format, qemu_name, options in (
        ("qcow2", "qcow2", ()),
        ("vmdk", "vmdk", ()),
        ("vhd", "vpc", ()),
        ("vhdx", "vhdx", ()),
        ("vdi", "vdi", ()),
    ):
        path = directory / f"legit.{disk_format}"
        qemu_img("create", "-q", "-f", qemu_name, *options, str(path), "16M")
        made[disk_format] = path
    stream = directory / "stream.vmdk"
    qemu_img(
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
        str(raw_file(directory)),
        str(stream),
    )
    made["vmdk-stream"] = stream
    made["raw"] = raw_file(directory)
    iso = directory / "legit.iso"
    data = bytearray(64 * 1024)
    data[0x8001:0x8006] = b"CD001"
    iso.write_bytes(bytes(data))
    made["iso"] = iso
    return made
