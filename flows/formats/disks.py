"""Formats identified by a signature at a fixed place: vhd, vhdx, vdi, iso, luks, gpt, mbr."""

from __future__ import annotations

import uuid

from flows.formats.base import Bits, Detected, malformed

VHD_COOKIE = b"conectix"
VHDX_SIGNATURE = b"vhdxfile"
VDI_SIGNATURE = 0xBEDA107F
ISO_SIGNATURE = b"CD001"
ISO_DESCRIPTORS = (0x8001, 0x8801, 0x9001)
LUKS_MAGIC = b"LUKS\xba\xbe"
GPT_SIGNATURE = b"EFI PART"

VHDX_REGION_TABLE = 192 * 1024
VHDX_METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
VHDX_VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")


def vhd_matches(bits: Bits) -> bool:
    """A VHD footer copy at 0 (dynamic) or the footer at the end (fixed)."""
    return bits.read(0, 8) == VHD_COOKIE or (
        bits.size >= 512 and bits.read(bits.size - 512, 8) == VHD_COOKIE
    )


def vhd(bits: Bits) -> Detected:
    """Virtual size from the footer's current size."""
    footer = 0 if bits.read(0, 8) == VHD_COOKIE else bits.size - 512
    (size,) = bits.unpack(">Q", footer + 48, "vhd", "the footer")
    return Detected("vhd", size)


def vhdx_matches(bits: Bits) -> bool:
    """The VHDX file identifier."""
    return bits.read(0, 8) == VHDX_SIGNATURE


def vhdx(bits: Bits) -> Detected:
    """Virtual size from the metadata region's Virtual Disk Size item."""
    fmt = "vhdx"
    table = bits.exact(VHDX_REGION_TABLE, 16, "the region table", fmt)
    if table[:4] != b"regi":
        raise malformed(fmt, "the region table signature is missing")
    count = int.from_bytes(table[8:12], "little")
    if count > 2047:
        raise malformed(fmt, f"{count} region entries")
    metadata_offset = None
    for index in range(count):
        entry = bits.exact(VHDX_REGION_TABLE + 16 + 32 * index, 32, "a region entry", fmt)
        if uuid.UUID(bytes_le=entry[:16]) == VHDX_METADATA_REGION:
            metadata_offset = int.from_bytes(entry[16:24], "little")
    if metadata_offset is None:
        raise malformed(fmt, "no metadata region")
    header = bits.exact(metadata_offset, 32, "the metadata table", fmt)
    if header[:8] != b"metadata":
        raise malformed(fmt, "the metadata table signature is missing")
    entries = int.from_bytes(header[10:12], "little")
    for index in range(min(entries, 2047)):
        entry = bits.exact(metadata_offset + 32 + 32 * index, 32, "a metadata entry", fmt)
        if uuid.UUID(bytes_le=entry[:16]) == VHDX_VIRTUAL_DISK_SIZE:
            item = int.from_bytes(entry[16:20], "little")
            (size,) = bits.unpack("<Q", metadata_offset + item, fmt, "the virtual disk size")
            return Detected(fmt, size)
    raise malformed(fmt, "no virtual disk size in the metadata")


def vdi_matches(bits: Bits) -> bool:
    """The VDI signature at 0x40."""
    return int.from_bytes(bits.read(0x40, 4).ljust(4, b"\0"), "little") == VDI_SIGNATURE


def vdi(bits: Bits) -> Detected:
    """Virtual size from the header."""
    (size,) = bits.unpack("<Q", 0x170, "vdi", "the header")
    return Detected("vdi", size)


def iso_matches(bits: Bits) -> bool:
    """An ISO 9660 volume descriptor at 32 KiB (or the next two sectors)."""
    return any(bits.read(offset, 5) == ISO_SIGNATURE for offset in ISO_DESCRIPTORS)


def iso(bits: Bits) -> Detected:
    """An ISO is read as raw: its virtual size is the file."""
    return Detected("iso", bits.size)


def luks_matches(bits: Bits) -> bool:
    """The LUKS magic."""
    return bits.read(0, 6) == LUKS_MAGIC


def luks(bits: Bits) -> Detected:
    """LUKS version and (for v1) the payload after the header."""
    (version,) = bits.unpack(">H", 6, "luks", "the header")
    if version == 1:
        (payload,) = bits.unpack(">I", 104, "luks", "the header")
        return Detected("luks", max(bits.size - payload * 512, 0), {"version": "1"})
    return Detected("luks", bits.size, {"version": str(version)})


def gpt_matches(bits: Bits) -> bool:
    """A GPT header in LBA 1."""
    return bits.read(512, 8) == GPT_SIGNATURE


def mbr_matches(bits: Bits) -> bool:
    """The MBR boot signature."""
    return bits.read(510, 2) == b"\x55\xaa"
