"""Configuration of one Ceph RBD store (kept apart from the store so Ceph stays optional)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flows.sparse import DEFAULT_CHUNK_SIZE


@dataclass(frozen=True, slots=True)
class RbdStoreConfig:
    """``[stores.NAME]`` with ``type = "rbd"``: one pool of one Ceph cluster."""

    type: Literal["rbd"]
    #: The cluster's ceph.conf.
    conf: str = "/etc/ceph/ceph.conf"
    #: The pool the images go to.
    pool: str = "images"
    #: The Ceph user (without ``client.``).
    user: str = "admin"
    #: A keyring file; empty uses the one ceph.conf names.
    keyring: str = ""
    #: Bytes per write; also the RBD object size.
    chunk_size: int = DEFAULT_CHUNK_SIZE
    #: Skip all-zero chunks (thin provisioning).
    thin_provisioning: bool = True
    #: Writes kept in flight at once.
    writes_in_flight: int = 8
    #: Seconds to reach the cluster, and for one operation, before the store counts as failed.
    connect_timeout: float = 10.0
    operation_timeout: float = 60.0
