"""The cache's Prometheus metrics, on the API process's registry (docs/metrics.md)."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge

from worker.cache.errors import FillReason


class MissPath(StrEnum):
    """How a download the cache did not hold was served."""

    #: It started the one store read, which fills the cache as it serves.
    FILL = "fill"
    #: It joined a store read already under way on this node.
    JOINED = "joined"
    #: Straight from the store: no room, or the image cannot be verified (no os_hash_value).
    UNCACHED = "uncached"


class ServedFrom(StrEnum):
    """Where the bytes a download sent came from."""

    CACHE = "cache"
    FILL = "fill"
    STORE = "store"


class EvictReason(StrEnum):
    """Why an entry left the cache."""

    #: Least recently used, to make room for a fill (or after max_size was lowered).
    LRU = "lru"
    #: An operator or the cache API removed it.
    OPERATOR = "operator"
    #: Its image was deleted, deactivated, or no longer has that data.
    IMAGE_GONE = "image_gone"
    #: A block no longer matched its recorded digest.
    CORRUPT = "corrupt"
    #: Its file was not a valid entry at start.
    INVALID = "invalid"


class SkipReason(StrEnum):
    """Why a download that missed did not fill the cache."""

    #: No room could be made (the image is larger than max_size, or the rest is being read).
    NO_ROOM = "no_room"
    #: The image has no os_hash_value (or size) to verify a copy against.
    UNVERIFIABLE = "unverifiable"


class CacheMetrics:
    """Every cache metric of one API process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.hits = Counter(
            "imgworker_cache_hits", "Downloads answered from this node's cache.", registry=registry
        )
        self.misses = Counter(
            "imgworker_cache_misses",
            "Downloads of images this node did not hold, by how they were served.",
            ["path"],
            registry=registry,
        )
        self.served_bytes = Counter(
            "imgworker_cache_served_bytes",
            "Bytes sent to downloads, by where they came from.",
            ["source"],
            registry=registry,
        )
        self.store_read_bytes = Counter(
            "imgworker_cache_store_read_bytes",
            "Bytes this node's fills read from the stores.",
            registry=registry,
        )
        self.fills = Counter(
            "imgworker_cache_fills", "Fills that became cache entries.", registry=registry
        )
        self.fill_failures = Counter(
            "imgworker_cache_fill_failures",
            "Fills discarded, by reason.",
            ["reason"],
            registry=registry,
        )
        self.skips = Counter(
            "imgworker_cache_fill_skipped",
            "Downloads that missed and were served without filling the cache, by reason.",
            ["reason"],
            registry=registry,
        )
        self.evictions = Counter(
            "imgworker_cache_evictions",
            "Entries removed from the cache, by reason.",
            ["reason"],
            registry=registry,
        )
        self.bytes = Gauge(
            "imgworker_cache_bytes",
            "Bytes the cache takes now: entries, fills under way, removed entries still read.",
            registry=registry,
        )
        self.entries = Gauge(
            "imgworker_cache_entries", "Images this node's cache holds.", registry=registry
        )
        self.max_bytes = Gauge(
            "imgworker_cache_max_bytes", "The cache's hard limit, max_size.", registry=registry
        )
        self.queued = Gauge(
            "imgworker_cache_queued",
            "Images queued for this node to fetch, not fetched yet.",
            registry=registry,
        )
        for reason in FillReason:
            self.fill_failures.labels(reason=reason)
        for path in MissPath:
            self.misses.labels(path=path)
        for source in ServedFrom:
            self.served_bytes.labels(source=source)

    def fill_failed(self, reason: FillReason) -> None:
        """A fill was discarded."""
        self.fill_failures.labels(reason=reason).inc()

    def evicted(self, reason: EvictReason, count: int = 1) -> None:
        """``count`` entries left the cache."""
        self.evictions.labels(reason=reason).inc(count)

    def missed(self, path: MissPath) -> None:
        """A download missed."""
        self.misses.labels(path=path).inc()

    def skipped(self, reason: SkipReason) -> None:
        """A download missed and will not fill the cache."""
        self.skips.labels(reason=reason).inc()

    def served(self, source: ServedFrom, count: int) -> None:
        """``count`` bytes went to a download."""
        self.served_bytes.labels(source=source).inc(count)
