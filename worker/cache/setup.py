"""Building a node's cache from the settings (None when ``[cache] dir`` is unset)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.stores.base import Store
from worker.cache.metrics import CacheMetrics
from worker.cache.node import NodeCache, NodeIdentity
from worker.cache.records import SqlCacheRecords
from worker.config.settings import Settings
from worker.db.engine import create_sessionmaker
from worker.db.images import SqlImageRepository


def node_cache(
    settings: Settings,
    engine: AsyncEngine,
    images: SqlImageRepository,
    stores: dict[str, Store],
    registry: CollectorRegistry,
) -> NodeCache | None:
    """This API node's cache over the records of ``engine``, not started; None when off."""
    cache = settings.cache
    if not cache.enabled:
        return None
    listen = settings.api.listen
    return NodeCache(
        cache,
        NodeIdentity(cache.node_name(listen), cache.node_url(listen)),
        settings.broker,
        cache_records(engine),
        images,
        stores,
        CacheMetrics(registry),
    )


def cache_records(engine: AsyncEngine) -> SqlCacheRecords:
    """The cache's rows in the database of ``engine``."""
    return SqlCacheRecords(create_sessionmaker(engine))
