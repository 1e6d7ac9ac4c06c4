"""What every handler of one API process shares: settings, records, stores, the broker."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry

from flows.records import ImageRecord
from flows.requester import RequestContext
from flows.signing.properties import is_signed
from flows.stores.base import Store
from worker.api.keystone import KeystoneClient
from worker.api.metrics import ApiMetrics
from worker.api.policies.engine import PolicyEngine
from worker.api.quotas import Quotas
from worker.cache.node import NodeCache
from worker.config.settings import Settings
from worker.daemon.client import LazyPublisher
from worker.db.catalog import SqlCatalog
from worker.db.metadefs.catalog import MetadefCatalog
from worker.tasks.services import Records, Services
from worker.tasks.submission import SubmissionRules


@dataclass
class ApiState:
    """The API process's collaborators.

    The records and the stores are a worker's (:class:`Services`, opened and closed the same
    way); the API adds the broker, the submission rules, the policy, the metadata definitions,
    the limits and the token validator.
    """

    services: Services
    publisher: LazyPublisher
    rules: SubmissionRules
    #: Who may do what (worker.api.policy).
    policy: PolicyEngine
    #: The metadata definitions (worker.api.metadefs).
    metadefs: MetadefCatalog
    #: The limits on what projects and images may hold (worker.api.quotas).
    quotas: Quotas
    #: The token validator when ``[api] auth = "keystone"``.
    keystone: KeystoneClient | None = None
    #: This node's image cache when ``[cache] dir`` is set (docs/cache.md).
    cache: NodeCache | None = None
    #: The process's metrics (``[api] metrics_listen``).
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    #: What this process counts beside the cache (tasks enqueued with no worker, ...).
    metrics: ApiMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = ApiMetrics(self.registry)

    @property
    def settings(self) -> Settings:
        """The process's configuration."""
        return self.services.settings

    @property
    def records(self) -> Records:
        """The records (database)."""
        return self.services.records

    @property
    def stores(self) -> dict[str, Store]:
        """Every configured store by name (downloads read them)."""
        return self.services.stores

    @property
    def catalog(self) -> SqlCatalog:
        """The image catalogue."""
        return self.records.catalog

    def shows_locations(self, identity: RequestContext) -> bool:
        """Whether ``identity`` sees image locations (``[api] show_locations``)."""
        mode = self.settings.api.show_locations
        return mode == "everyone" or (mode == "admin" and identity.is_admin)

    def import_requester(self, identity: RequestContext, image: ImageRecord) -> RequestContext:
        """The context of an import task of ``image``.

        The caller's token travels only when the worker must act as the caller: a signed
        image whose certificate Barbican holds (Glance reads it with the user's context). A
        token in a queued message is a secret at rest, so no other message carries one.
        """
        barbican = self.settings.signature.key_manager == "barbican"
        return identity if barbican and is_signed(image.properties) else identity.without_token()


STATE_KEY: web.AppKey[ApiState] = web.AppKey("imgworker_api_state", ApiState)


def state_of(request: web.Request) -> ApiState:
    """The state of the application serving ``request``."""
    return request.app[STATE_KEY]
