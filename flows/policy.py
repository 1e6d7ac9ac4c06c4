"""Safety limits and checks applied to every import (image sizes, formats, sources)."""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1024**3
TiB = 1024**4


@dataclass(frozen=True, slots=True)
class SafetyPolicy:
    """Limits on what an import may bring in; defaults are safe for an untrusted source."""

    #: Largest number of bytes a source may deliver (checked while streaming).
    image_size_cap: int = TiB
    #: Largest virtual size an image may declare (checked before qemu-img sees it).
    virtual_size_cap: int = 4 * TiB
    #: VMDK create types accepted.
    vmdk_allowed_types: tuple[str, ...] = ("monolithicSparse", "streamOptimized")
    #: Free bytes the staging area must keep after a download or conversion.
    staging_min_free_bytes: int = GiB
    #: CPU seconds and address space given to ``qemu-img info``.
    qemu_info_cpu_seconds: int = 30
    qemu_info_address_space: int = GiB
    #: CPU seconds and address space given to ``qemu-img convert``.
    qemu_convert_cpu_seconds: int = 3600
    qemu_convert_address_space: int = 2 * GiB
    #: web-download filtering (Glance's import_filtering_opts and more).
    allowed_schemes: tuple[str, ...] = ("http", "https")
    disallowed_schemes: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    disallowed_hosts: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = (80, 443)
    disallowed_ports: tuple[int, ...] = ()
    #: Allow addresses that are loopback/private/link-local (tests only; never by default).
    allow_private_addresses: bool = False
    #: Hosts (names or IP literals) trusted to be internal: their addresses are exempt from the
    #: private-address check (an internal mirror). Redirects away from them are checked as usual.
    trusted_hosts: tuple[str, ...] = ()
    #: Seconds to connect, to wait between bytes, and for the whole download.
    connect_timeout: float = 30.0
    read_timeout: float = 120.0
    total_timeout: float = 6 * 3600.0
    #: Redirects followed at most (each one checked like the first URI).
    max_redirects: int = 5
