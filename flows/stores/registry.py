"""Which store type is implemented where: adding a store type adds one line here."""

from __future__ import annotations

from flows.stores.base import Store
from flows.stores.file import FileStore, FileStoreConfig
from flows.stores.rbd_config import RbdStoreConfig

#: Every store configuration type (the ``type`` key of a ``[stores.NAME]`` table).
StoreConfig = FileStoreConfig | RbdStoreConfig


def build_store(name: str, config: StoreConfig) -> Store:
    """Create the store ``name`` from its configuration."""
    if isinstance(config, FileStoreConfig):
        return FileStore(name, config)
    # Imported here so that hosts without Ceph's bindings can run every other store.
    from flows.stores.rbd import RbdStore

    return RbdStore(name, config)
