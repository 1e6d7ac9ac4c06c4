"""The worker's configuration: one TOML file, every key overridable from the environment.

Declared once here, typed, and validated at start. ``IMGWORKER_<SECTION>__<KEY>`` overrides
``[section] key`` (``IMGWORKER_STORES__CENTRAL__PATH`` reaches ``[stores.central] path``);
values are read as TOML literals (``4``, ``true``, ``["a", "b"]``) and otherwise as strings.
With no file at all the defaults make ``imgworker import`` work: SQLite, ``./staging`` and one
file store ``default`` under ``./stores/default``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from flows.config import FlowSettings
from flows.policy import SafetyPolicy
from flows.request import METHODS
from flows.signing.config import SignatureSettings
from flows.stores.file import FileStoreConfig
from flows.stores.rbd_config import RbdStoreConfig
from worker.config.address import LOOPBACK, IpNetwork, parse_address, parse_network
from worker.config.keys import misspelt_variables, unknown_keys, without
from worker.config.source import DEFAULT_DATABASE_URL, ENV_PREFIX, RawConfig, read_config
from worker.config.source import ConfigError as ConfigError  # raised by load_settings

StoreConfig = Annotated[FileStoreConfig | RbdStoreConfig, Field(discriminator="type")]
#: The table each ``[stores.NAME] type`` declares.
STORE_TYPES: dict[str, type] = {"file": FileStoreConfig, "rbd": RbdStoreConfig}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    """``[database]``: where the image and task records live."""

    url: str = DEFAULT_DATABASE_URL
    #: Create or upgrade the schema when the worker starts.
    auto_upgrade: bool = True

    def shared_use_warning(self) -> str | None:
        """What is wrong with ``url`` for processes that share the records (``imgworker
        api`` and its workers), or None: SQLite is a file for one process."""
        if not self.url.startswith("sqlite"):
            return None
        return (
            f"[database] url is SQLite ({self.url}), which is for one process "
            "(imgworker import): imgworker api and its workers share the records, so point "
            "[database] url at PostgreSQL (deploy/dev/stack.sh up makes one)"
        )


class BrokerSettings(_Section):
    """``[broker]``: the RabbitMQ topology tasks travel through."""

    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    exchange: str = "imgworker"
    queue: str = "imgworker.tasks"
    routing_key: str = "import"
    dead_letter_exchange: str = "imgworker.dlx"
    dead_letter_queue: str = "imgworker.dead"
    #: Deliveries of one message before the broker dead-letters it (``x-delivery-limit``).
    delivery_limit: int = Field(default=5, ge=1)
    #: Largest task message accepted; a larger one is dead-lettered unread (``too_large``).
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)


class WorkerSettings(_Section):
    """``[worker]``: one daemon process."""

    #: Imports run at once (also the consumer's prefetch).
    concurrency: int = Field(default=2, ge=1, le=64)
    #: Seconds a task may go without a heartbeat before its lock can be taken over.
    lease_seconds: float = Field(default=300.0, gt=0)
    #: Seconds between heartbeats (well under the lease).
    heartbeat_seconds: float = Field(default=30.0, gt=0)
    #: Seconds running imports get to finish on SIGTERM before they are reverted and requeued.
    drain_grace_seconds: float = Field(default=60.0, ge=0)
    #: ``host:port`` of /metrics, /livez, /readyz and POST /drain.
    http: str = "127.0.0.1:9480"
    #: Lets ``POST /drain`` come from elsewhere than loopback, with ``Authorization: Bearer
    #: <token>`` (``imgworker drain`` sends it). Unset: only loopback may drain.
    drain_token: SecretStr | None = None
    #: This worker's id in task claims (default: host name and process id).
    id: str = ""
    #: Seconds a delete task that could not finish waits before it is published again.
    delete_retry_seconds: float = Field(default=60.0, gt=0)
    #: Seconds between two looks for delete tasks that are due again.
    sweep_seconds: float = Field(default=15.0, gt=0)

    @field_validator("http")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_address(value)
        return value

    @field_validator("drain_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("drain_token must have at least 16 characters")
        return value

    @model_validator(mode="after")
    def _heartbeat_under_lease(self) -> WorkerSettings:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be at most half of "
                f"lease_seconds ({self.lease_seconds}), or a live task could lose its lock"
            )
        return self

    def worker_id(self) -> str:
        """The configured id, or ``<hostname>:<pid>``."""
        return self.id or f"{socket.gethostname()}:{os.getpid()}"


class StagingSettings(_Section):
    """``[staging]``: where the bits wait between download and store."""

    dir: Path = Path("./staging")


class ImportSettings(_Section):
    """``[import]``: which methods are offered and what is converted to what."""

    methods: tuple[str, ...] = METHODS
    #: Target format of ``qemu-img convert``; ``""`` turns conversion off.
    convert_to: str = "raw"
    #: Bytes per read, hash update and write.
    chunk_size: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    #: Store writes run at once from one read of the data; 1 writes the stores one after
    #: the other, in the order given (the guide's order).
    max_parallel_stores: int = Field(default=1, ge=1, le=16)

    @model_validator(mode="after")
    def _known_methods(self) -> ImportSettings:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown import methods {unknown}; known: {list(METHODS)}")
        return self


def _default_backends() -> dict[str, FileStoreConfig | RbdStoreConfig]:
    return {"default": FileStoreConfig(type="file", path="./stores/default")}


class InjectMetadataSettings(_Section):
    """``[inject_metadata]``: Glance's ``inject_image_metadata`` plugin."""

    #: Properties set on every imported image.
    properties: dict[str, str] = Field(default_factory=dict)
    #: Requesters with one of these roles are exempt.
    ignore_user_roles: tuple[str, ...] = ("admin",)


class StoresSettings(BaseModel):
    """``[stores]``: ``default = NAME`` plus one ``[stores.NAME]`` table per store."""

    model_config = ConfigDict(frozen=True)

    default: str = "default"
    backends: dict[str, StoreConfig] = Field(default_factory=_default_backends)

    @model_validator(mode="before")
    @classmethod
    def _split_tables(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "backends" not in data:
            tables = {k: v for k, v in data.items() if k != "default"}
            rebuilt: dict[str, Any] = {"backends": tables} if tables else {}
            if "default" in data:
                rebuilt["default"] = data["default"]
            return rebuilt
        return data

    @model_validator(mode="after")
    def _default_exists(self) -> StoresSettings:
        if self.default not in self.backends:
            raise ValueError(
                f"default store {self.default!r} is not configured; "
                f"configured stores: {sorted(self.backends)}"
            )
        return self


#: Glance's disk and container formats (``GlanceDiskFormats`` narrows the first).
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")


class ApiSettings(_Section):
    """``[api]``: ``imgworker api``, the Glance Image API v2 front door."""

    #: ``host:port`` to listen on (Glance's port by default).
    listen: str = "127.0.0.1:9292"
    #: ``none``: every caller is an admin of ``default_project`` (a laptop; loopback only
    #: unless ``allow_unauthenticated_network``); ``headers``: identity from an authenticating
    #: proxy's X-Identity-Status / X-Project-Id / X-User-Id / X-Roles headers, believed only
    #: from ``trusted_proxies``; ``keystone``: tokens validated against Keystone (see
    #: ``[keystone]``).
    auth: Literal["none", "headers", "keystone"] = "none"
    #: The project of every caller when ``auth = "none"``.
    default_project: str = "admin"
    #: With ``auth = "none"``, serve a ``listen`` address other hosts can reach, where anyone
    #: who reaches the port is an admin. Unset, ``imgworker api`` refuses to start that way.
    allow_unauthenticated_network: bool = False
    #: With ``auth = "headers"``: the addresses or networks (``192.0.2.7``, ``10.0.0.0/8``,
    #: ``fd00::/64``) of the authenticating proxies, the only TCP peers whose identity headers
    #: are believed; identity headers from any other peer are refused with 401.
    trusted_proxies: tuple[IpNetwork, ...] = LOOPBACK
    #: The base URL clients reach this API at (version document, Location headers);
    #: empty: taken from each request's Host header.
    public_url: str = ""
    #: Disk formats an image may be created with (the guide's ``GlanceDiskFormats``).
    disk_formats: tuple[str, ...] = DISK_FORMATS
    #: Container formats an image may be created with.
    container_formats: tuple[str, ...] = CONTAINER_FORMATS
    #: Largest JSON request body accepted, in bytes.
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: Images listed per page when the request gives no limit, and the most it may ask for.
    default_page_size: int = Field(default=25, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    #: Who sees ``locations`` in image records: nobody, admins, or everyone (Glance's
    #: ``show_multiple_locations``; the guide's 2.5 shows them to the cloud admin).
    show_locations: Literal["never", "admin", "everyone"] = "admin"
    #: Seconds ``PUT /v2/images/{id}/file`` (a classic upload) waits for its import to end.
    upload_wait_seconds: float = Field(default=3600.0, gt=0)
    #: Policy file in oslo.policy's YAML (or JSON) format, overriding Glance's default rules
    #: (docs/policy.md); empty: the defaults alone. Re-read when it changes.
    policy_file: str = ""
    #: Directories of more policy files, applied after ``policy_file`` in name order.
    policy_dirs: tuple[str, ...] = ()
    #: Seconds between two looks for a changed policy file.
    policy_reload_seconds: float = Field(default=2.0, gt=0)
    #: ``host:port`` of this API process's ``/metrics`` (the image cache's counters, tasks
    #: enqueued while no worker consumed the queue, ...); empty: not served.
    metrics_listen: str = ""
    #: Glance's per-image limits (413 beyond; -1: no limit): extra properties (``os_glance_*``
    #: not counted), tags, locations (stores holding the image), members (projects it is
    #: shared with).
    image_property_quota: int = Field(default=128, ge=-1)
    image_tag_quota: int = Field(default=128, ge=-1)
    image_location_quota: int = Field(default=10, ge=-1)
    image_member_quota: int = Field(default=128, ge=-1)

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_address(value)
        return value

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_address(cls, value: str) -> str:
        if value:
            parse_address(value)
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(parse_network(v) if isinstance(v, str) else v for v in value)
        return value

    @model_validator(mode="after")
    def _known_formats(self) -> ApiSettings:
        unknown = [f for f in self.disk_formats if f not in DISK_FORMATS]
        unknown += [f for f in self.container_formats if f not in CONTAINER_FORMATS]
        if unknown:
            raise ValueError(
                f"unknown formats {unknown}; disk formats are {list(DISK_FORMATS)}, container "
                f"formats {list(CONTAINER_FORMATS)}"
            )
        return self


class CacheSettings(_Section):
    """``[cache]``: the image cache of this ``imgworker api`` node (docs/cache.md).

    Off while ``dir`` is unset. Each API node keeps verified copies of the images it serves
    in ``dir``, its own; which node holds what is recorded in the database, and cache
    requests reach every node through the broker.
    """

    #: This node's cache directory (a local disk; one API process per directory).
    dir: Path | None = None
    #: Most bytes the cache may hold, partial fills included: a hard limit.
    max_size: int = Field(default=10 * 1024**3, ge=1024 * 1024)
    #: Seconds a fill may go without receiving a byte from its store before it is abandoned.
    stall_seconds: float = Field(default=600.0, gt=0)
    #: This node's name in the records and in ``--node``; keep it stable across restarts.
    #: Empty: ``<host name>:<listen port>``.
    node: str = Field(default="", max_length=200)
    #: The URL this node is reached at directly (Glance's ``worker_self_reference_url``),
    #: listed by ``GET /v2/cache/nodes/{image_id}``. Empty: ``http://<host>:<listen port>``.
    url: str = ""
    #: Seconds between two runs of the pruner and the cleaner (the guide's 5 minutes).
    prune_interval_seconds: float = Field(default=300.0, gt=0)
    #: Queued images fetched at once by this node.
    prefetch_concurrency: int = Field(default=2, ge=1, le=16)
    #: Seconds before a queued image whose store could not be read is tried again.
    prefetch_retry_seconds: float = Field(default=30.0, gt=0)
    #: Check every block read from the cache against the digest recorded when it was filled
    #: (docs/cache.md measures the cost). Off only to measure that cost.
    verify_reads: bool = True

    @property
    def enabled(self) -> bool:
        """Whether this node caches at all."""
        return self.dir is not None

    @field_validator("node")
    @classmethod
    def _node_name(cls, value: str) -> str:
        if value and not all(c.isalnum() or c in "-_.:@" for c in value):
            raise ValueError(
                f"node {value!r} may hold only letters, digits and - _ . : @ (it names a queue)"
            )
        return value

    def node_name(self, listen: str) -> str:
        """This node's name: ``node``, else ``<host name>:<port of listen>``."""
        return self.node or f"{socket.gethostname()}:{parse_address(listen)[1]}"

    def node_url(self, listen: str) -> str:
        """This node's own URL: ``url``, else from the host name and ``listen``."""
        if self.url:
            return self.url.rstrip("/")
        host, port = parse_address(listen)
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class KeystoneSettings(_Section):
    """``[keystone]``: how ``imgworker api`` validates tokens when ``[api] auth = "keystone"``.

    The API authenticates itself as a service user (a password, or an application credential)
    and validates every caller's ``X-Auth-Token`` with ``GET /v3/auth/tokens``. The user needs
    the ``service`` role (or ``admin``) on its project, as Glance's own service user has.
    """

    #: Keystone v3 as this service reaches it: ``https://keystone.example:5000/v3``.
    auth_url: str = ""
    #: What a 401 tells clients to authenticate with (``WWW-Authenticate: Keystone uri=...``):
    #: Keystone's public URL when ``auth_url`` is an internal one; empty: ``auth_url``.
    www_authenticate_uri: str = ""
    #: The service user and its password ...
    username: str = ""
    password: SecretStr | None = None
    user_domain_name: str = "Default"
    #: ... scoped to this project (usually ``service``) ...
    project_name: str = "service"
    project_domain_name: str = "Default"
    #: ... or an application credential instead of all four.
    application_credential_id: str = ""
    application_credential_secret: SecretStr | None = None
    #: The region whose ``image`` endpoint should be this API: checked once at start and
    #: reported in the log (a catalog pointing elsewhere sends the clients elsewhere).
    region_name: str = "RegionOne"
    #: Seconds a validated token is trusted without asking Keystone again (never past the
    #: token's expiry). A revoked token is refused at the latest this long after revocation.
    cache_seconds: float = Field(default=120.0, ge=0, le=300)
    #: Most tokens kept in the cache (least recently used ones go first).
    cache_entries: int = Field(default=10_000, ge=1)
    #: Seconds to connect to Keystone, and for a whole request to it.
    connect_timeout_seconds: float = Field(default=3.0, gt=0)
    request_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("auth_url", "www_authenticate_uri")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value!r} is not an http(s) URL; write Keystone's v3 URL like "
                "https://keystone.example:5000/v3"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_credential(self) -> KeystoneSettings:
        if self.application_credential_id and self.username:
            raise ValueError(
                "set either username and password or application_credential_id and "
                "application_credential_secret, not both"
            )
        if self.application_credential_id and self.application_credential_secret is None:
            raise ValueError("application_credential_id is set but not its secret")
        if self.username and self.password is None:
            raise ValueError(f"username {self.username!r} is set but not its password")
        return self

    def problems(self) -> list[str]:
        """What is missing for ``auth = "keystone"`` (empty when it is usable)."""
        missing = []
        if not self.auth_url:
            missing.append("auth_url (Keystone's v3 URL) is not set")
        if not (self.username or self.application_credential_id):
            missing.append(
                "no service credential: set username and password, or "
                "application_credential_id and application_credential_secret"
            )
        return missing


class NotificationSettings(_Section):
    """``[notifications]``: Glance's notifications, as oslo.messaging's notifier sends them.

    Every event is first recorded in the database with the change it reports (an outbox);
    a relay in each worker and API process publishes what waits, so a notification broker
    that is down or slow delays no import and loses no event (docs/notifications.md).
    """

    #: ``messaging``: publish to RabbitMQ in oslo.messaging's v2 envelope, as Glance's
    #: ``messagingv2`` driver does (``messagingv2`` is accepted as the same, so Glance's value
    #: can be copied); ``log``: log each notification (oslo's ``log`` driver); ``noop``:
    #: record and send nothing (Glance's default).
    driver: Literal["messaging", "messagingv2", "log", "noop"] = "noop"
    #: The notification broker (oslo's ``transport_url`` for notifications); empty: the task
    #: broker, ``[broker] url``.
    url: str = ""
    #: Topics each notification is published on, as ``<topic>.<priority>`` (``info``,
    #: ``error``); oslo's ``[oslo_messaging_notifications] topics``.
    topics: tuple[str, ...] = ("notifications",)
    #: The topic exchange (Glance's control exchange).
    exchange: str = "glance"
    #: The ``publisher_id`` of every notification (Glance's ``default_publisher_id``).
    publisher_id: str = "image.localhost"
    #: Declare the exchange and the default queues durable: oslo's ``amqp_durable_queues``,
    #: which must match what the other services on that broker use.
    durable: bool = False
    #: Event types (``image.send``) or groups (``task``) never recorded nor sent (Glance's
    #: ``disabled_notifications``).
    disabled: tuple[str, ...] = ()
    #: Seconds between two looks for notifications waiting to be sent.
    poll_seconds: float = Field(default=1.0, gt=0)
    #: Seconds a sent notification is kept: it is what stops a task resumed within this time
    #: from announcing an event twice.
    keep_sent_seconds: float = Field(default=7 * 24 * 3600.0, ge=3600)

    @field_validator("topics")
    @classmethod
    def _some_topic(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one topic (oslo's default is notifications)")
        return value

    @property
    def enabled(self) -> bool:
        """Whether notifications are recorded at all."""
        return self.driver != "noop"

    def broker_url(self, broker: BrokerSettings) -> str:
        """The notification broker's URL (the task broker's when none is set)."""
        return self.url or broker.url


class QuotaSettings(_Section):
    """``[quotas]``: Keystone's unified limits on what a project stores (docs/quotas.md).

    Read from Keystone by oslo.limit as the user of ``[keystone]`` (who needs the system
    ``reader`` role), for the ``image`` service's endpoint; cached ``cache_seconds``.
    """

    #: Glance's ``use_keystone_limits``: enforce ``image_size_total``, ``image_stage_total``,
    #: ``image_count_total`` and ``image_count_uploading``. A resource with no registered
    #: limit then allows nothing, as in Glance.
    use_keystone_limits: bool = False
    #: Seconds a project's limits (and the registered defaults) are used without asking
    #: Keystone again: a changed limit applies at most this long after the change.
    cache_seconds: float = Field(default=60.0, ge=0, le=300)
    #: The image service's endpoint the limits are registered for (oslo.limit's
    #: ``endpoint_id``), or how to find it: service type or name, region, interface.
    endpoint_id: str = ""
    endpoint_service_type: str = "image"
    endpoint_service_name: str = ""
    #: Empty: ``[keystone] region_name``.
    endpoint_region_name: str = ""
    endpoint_interface: Literal["public", "internal", "admin"] = "public"
    #: The scope oslo.limit's token asks for (Glance's docs: ``all``, with the system
    #: ``reader`` role); empty: ``[keystone]``'s project.
    system_scope: str = "all"


class MetadefSettings(_Section):
    """``[metadefs]``: the metadata definitions API (docs/metadefs.md)."""

    #: Metadef records (namespaces, objects, properties, tags, resource type associations)
    #: one project may own through the API; -1: no limit. Callers the ``context_is_admin``
    #: rule admits, and ``imgworker db load-metadefs``, are not limited.
    project_limit: int = Field(default=1000, ge=-1)


class Settings(BaseModel):
    """The whole configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    worker: WorkerSettings = WorkerSettings()
    staging: StagingSettings = StagingSettings()
    import_: ImportSettings = Field(default=ImportSettings(), alias="import")
    stores: StoresSettings = StoresSettings()
    safety: SafetyPolicy = SafetyPolicy()
    signature: SignatureSettings = SignatureSettings()
    inject_metadata: InjectMetadataSettings = InjectMetadataSettings()
    api: ApiSettings = ApiSettings()
    cache: CacheSettings = CacheSettings()
    keystone: KeystoneSettings = KeystoneSettings()
    metadefs: MetadefSettings = MetadefSettings()
    notifications: NotificationSettings = NotificationSettings()
    quotas: QuotaSettings = QuotaSettings()

    @model_validator(mode="after")
    def _keystone_when_used(self) -> Settings:
        if self.api.auth == "keystone" and (problems := self.keystone.problems()):
            raise ValueError(
                '[api] auth = "keystone" needs a usable [keystone] section: ' + "; ".join(problems)
            )
        if self.quotas.use_keystone_limits and (problems := self.keystone.problems()):
            raise ValueError(
                "[quotas] use_keystone_limits = true reads the limits as the [keystone] user, "
                "which needs a usable [keystone] section: " + "; ".join(problems)
            )
        return self

    def flow_settings(self) -> FlowSettings:
        """The subset a flow runs with."""
        return FlowSettings(
            staging_dir=self.staging.dir,
            methods=self.import_.methods,
            convert_to=self.import_.convert_to,
            chunk_size=self.import_.chunk_size,
            max_parallel_stores=self.import_.max_parallel_stores,
            lease_seconds=self.worker.lease_seconds,
            heartbeat_seconds=self.worker.heartbeat_seconds,
            safety=self.safety,
            signature=self.signature,
            inject_properties=dict(self.inject_metadata.properties),
            inject_ignore_roles=self.inject_metadata.ignore_user_roles,
        )


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file (``path``, else ``$IMGWORKER_CONFIG``, else none) plus overrides.

    Raises :class:`ConfigError` listing every problem: each unknown key (with the nearest
    declared one) and each value validation refuses, with where it was set.
    """
    raw = read_config(path, environ)
    unknown = unknown_keys(Settings, raw.data, STORE_TYPES, raw.variables)
    problems = [found.describe() for found in unknown]
    problems += misspelt_variables(Settings, raw.unused, ENV_PREFIX)
    try:
        settings = Settings.model_validate(without(raw.data, unknown))
    except ValidationError as exc:
        problems += _validation_problems(exc, raw)
    if problems:
        raise ConfigError(_describe(problems, raw.source))
    return settings


def _validation_problems(error: ValidationError, raw: RawConfig) -> list[str]:
    problems = []
    for problem in error.errors():
        path = tuple(str(part) for part in problem["loc"] if part != "backends")
        if path[:1] == ("stores",) and len(path) > 3 and path[2] in STORE_TYPES:
            # pydantic names the store type it validated against: not a key.
            path = (*path[:2], *path[3:])
        variable = raw.variables.get(path)
        where = f" (set by {variable})" if variable else ""
        problems.append(f"{'.'.join(path) or '(top level)'}: {problem['msg']}{where}")
    return problems


def _describe(problems: list[str], source: str) -> str:
    lines = [f"{source}: {len(problems)} problem(s) in the configuration:"]
    lines += [f"  - {problem}" for problem in problems]
    lines.append(
        f"  (each key may come from the file or from {ENV_PREFIX}<SECTION>__<KEY> variables)"
    )
    return "\n".join(lines)
